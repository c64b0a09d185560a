"""Generate the student notebooks in notebooks/ from the solutions in solutions/.

    python -m course.release           # write notebooks/
    python -m course.release --check   # exit 1 with a diff if notebooks/ is stale
"""

import argparse
import copy
import difflib
import re
import sys

import nbformat

from course.notebook import (
    BEGIN,
    END,
    NOTEBOOKS,
    NotInRepository,
    grade_id,
    notebook_id,
    read,
    solution_paths,
    tags,
)
from course.tasks import for_notebook

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
_REGION = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*(\n|$)",
                     re.MULTILINE | re.DOTALL)
_DEF = re.compile(r"^[ \t]*def (\w+)\(", re.MULTILINE)


def stub_source(source, cell_type, task_id):
    """Replace each solution region with a stub the student fills in."""
    def stub(match):
        indent, newline = match.group(1), match.group(2)
        if cell_type == "markdown":
            return f"{indent}YOUR ANSWER HERE{newline}"
        # Name the function the stub sits in (a cell may hold a forward and a backward).
        defs = _DEF.findall(source, 0, match.start())
        name = defs[-1] if defs else task_id
        return (f"{indent}# YOUR CODE HERE\n"
                f'{indent}raise NotImplementedError("{name}: not implemented yet"){newline}')
    new, count = _REGION.subn(stub, source)
    if BEGIN in new or END in new:
        raise ValueError(f"{task_id}: unbalanced {BEGIN} / {END} markers")
    return new, count


def student_version(nb, nb_id):
    """The student notebook for one solution notebook: stubs, no outputs, points, an id."""
    out = copy.deepcopy(nb)
    tasks = {t.grade_id: t for t in for_notebook(nb_id)}
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if "answer" in tags(cell) and cell.cell_type == "code":
            # An auto-graded answer's points live in its Task only (written answers keep theirs
            # in the solution's metadata), so changing them is a one-line edit in course/tasks.
            task = tasks.get(grade_id(cell))
            if task is None:
                raise ValueError(f"{nb_id}: answer cell {grade_id(cell)} has no Task in "
                                 "course/tasks")
            cell.metadata["nbgrader"]["points"] = task.points
        if "answer" in tags(cell):
            new, count = stub_source(cell.source, cell.cell_type, grade_id(cell) or nb_id)
            if count == 0 and cell.cell_type == "code":
                raise ValueError(f"{nb_id}: answer cell {grade_id(cell)} has no {BEGIN} region")
            cell.source = new
    out.metadata["kernelspec"] = KERNELSPEC
    out.metadata.setdefault("course", {})["notebook"] = nb_id
    return out


def render(nb):
    """The exact text written to disk, so --check can compare strings."""
    return nbformat.writes(nb, version=4) + "\n"


def build():
    """{target path: text} for every student notebook."""
    result = {}
    for path in solution_paths():
        nb = read(path)
        nb_id = notebook_id(nb, path)
        result[NOTEBOOKS / path.name] = render(student_version(nb, nb_id))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only report whether notebooks/ is stale")
    args = parser.parse_args(argv)
    try:
        wanted = build()
    except NotInRepository as err:  # an installed package: nothing to release from
        print(f"course.release: {err}", file=sys.stderr)
        return 2
    stray = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if p not in wanted)
    if args.check:
        stale = []
        for path, text in wanted.items():
            have = path.read_text() if path.exists() else ""
            if have != text:
                stale.append(path.name)
                diff = difflib.unified_diff(have.splitlines(), text.splitlines(),
                                            f"{path.name} (committed)", f"{path.name} (generated)",
                                            lineterm="", n=1)
                print("\n".join(list(diff)[:40]))
        for path in stray:
            stale.append(path.name)
            print(f"{path.name}: in notebooks/ but has no source in solutions/")
        if stale:
            print(f"\nnotebooks/ is stale ({', '.join(stale)}). Run: python -m course.release")
            return 1
        print(f"notebooks/ is up to date ({len(wanted)} notebooks).")
        return 0
    NOTEBOOKS.mkdir(exist_ok=True)
    for path, text in wanted.items():
        path.write_text(text)
    for path in stray:
        path.unlink()
    print(f"wrote {len(wanted)} student notebooks to {NOTEBOOKS.name}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
