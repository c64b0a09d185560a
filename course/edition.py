"""Write a student edition of the course: the repository without solutions/ and the tooling only
instructors and maintainers use (grader, nbgrader export, release, tests, benchmarks, CI).

    python -m course.edition OUT_DIR

Binder and nbgitpuller hand students the whole repository, solutions/ included; an instructor
who grades publishes this folder instead. It refuses to write when notebooks/ is stale or when a
solution's text would end up in it (except an exercise's reference in its own course module,
which students have anyway).
"""

import argparse
import inspect
import re
import subprocess
import sys
from pathlib import Path

from course.notebook import BEGIN, END, ROOT, NotInRepository, grade_id, read, tags
from course.release import build, checked_id, stale_message
from course.tasks import for_notebook

# Left out, by path from the repository root (a folder ends in /).
OMIT = ("solutions/", "tests/", "benchmarks/", ".ci/", "course/grade/", "course/notebook.py",
        "course/release.py", "course/edition.py", "course/selfgrade.py",
        "course/nbgrader_export.py", "requirements-dev.txt", ".pre-commit-config.yaml")
# How the README names what is left out: a paragraph naming one of these is left out too.
OMITTED_NAMES = ("solutions/", "tests/", "benchmarks/", "course.grade", "course.selfgrade",
                 "course.release", "course.edition", "course.nbgrader_export",
                 "requirements-dev.txt", "make test", "make bench", "make release")
README_SECTIONS = ("The course", "For students", "Data and licence")  # kept, with the preamble
QUICK_START = """\
## Quick start

You need Python 3.10+ and `make`: `make lab` creates `.venv`, installs what the notebooks need
(pinned) and opens JupyterLab on notebook 01. Without `make`:

```bash
python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
JUPYTER_CONFIG_PATH="$PWD/jupyter-config" OPENBLAS_NUM_THREADS=1 \\
  .venv/bin/jupyter lab notebooks/01_why_normalize.ipynb    # add --allow-root as root
```
"""
_REGION = re.compile(rf"^[ \t]*{re.escape(BEGIN)}[^\n]*\n(.*?)^[ \t]*{re.escape(END)}",
                     re.MULTILINE | re.DOTALL)


def omitted(rel):
    """Whether a repository path stays out of the edition."""
    return any(rel == o or (o.endswith("/") and rel.startswith(o)) for o in OMIT)


def tracked_files(root=ROOT):
    """The repository's files as git tracks them (never .venv, submissions or outputs)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True,
                             text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise NotInRepository(f"{root} is not a git checkout of the course ({err})") from None
    return sorted(p for p in out.split("\0") if p and (root / p).is_file())


def _flat(text):
    return " ".join(text.split())


def solution_texts():
    """[(where, text, files it may appear in)] for every solution region of every notebook: an
    exercise's text may appear only in its reference's own module (course/saturation.py holds
    saturation_fraction, one line that any right answer shares); a written answer nowhere."""
    found = []
    for path in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")):
        nb = read(path)
        nb_id = checked_id(nb, path)
        tasks = {t.grade_id: t for t in for_notebook(nb_id)}
        for cell in (c for c in nb.cells if "answer" in tags(c)):
            task = tasks.get(grade_id(cell))
            allowed = set() if task is None else {
                Path(inspect.getsourcefile(fn)).resolve().relative_to(ROOT).as_posix()
                for fn in task.reference}
            for match in _REGION.finditer(cell.source):
                found.append((f"{nb_id}:{grade_id(cell)}", _flat(match.group(1)), allowed))
    return found


def leaks(files):
    """[(where, file)] of solution text found in {path: text}."""
    flat = {rel: _flat(text) for rel, text in files.items()}
    return [(where, rel) for where, text, allowed in solution_texts() if text
            for rel, body in flat.items() if rel not in allowed and text in body]


def student_readme(text):
    """The README for students: the preamble, a quick start without developer tools, and the
    kept sections, without any paragraph that names what the edition leaves out."""
    parts = re.split(r"^(?=## )", text, flags=re.MULTILINE)
    kept = [parts[0], QUICK_START + "\n"]
    kept += [p for p in parts[1:] if p.splitlines()[0][3:].strip() in README_SECTIONS]
    paragraphs = re.split(r"\n(?=\n)", "".join(kept))
    return "\n".join(p for p in paragraphs
                     if not any(name in p for name in OMITTED_NAMES)).rstrip() + "\n"


def edition():
    """{relative path: text or bytes} of the student edition."""
    stale = [p.name for p, text in build().items() if not p.exists() or p.read_text() != text]
    if stale:
        raise ValueError(stale_message(stale))
    files = {}
    for rel in tracked_files():
        if omitted(rel):
            continue
        data = (ROOT / rel).read_bytes()
        try:
            files[rel] = data.decode("utf-8")
        except UnicodeDecodeError:
            files[rel] = data  # binary (the digits data): copied as it is
    files["README.md"] = student_readme(files["README.md"])
    if found := leaks({rel: t for rel, t in files.items() if isinstance(t, str)}):
        raise ValueError("solution text would be in the edition: " + ", ".join(
            f"{where} in {rel}" for where, rel in found))
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m course.edition",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="a folder that does not exist yet, or is empty")
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        print(f"course.edition: {args.out} is not empty; give a new folder", file=sys.stderr)
        return 2
    try:
        files = edition()
    except (NotInRepository, ValueError) as err:
        print(f"course.edition: {err}", file=sys.stderr)
        return 1
    for rel, content in files.items():
        target = args.out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        target.chmod((ROOT / rel).stat().st_mode & 0o777)  # binder/postBuild stays executable
    print(f"wrote the student edition ({len(files)} files) to\n  {args.out}/\n"
          "without solutions/, the grader, the nbgrader export, release, tests or benchmarks.\n"
          "Publish that folder (Binder and nbgitpuller then hand out only the edition).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
