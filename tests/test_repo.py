"""Repository hygiene: pins, Binder, CI entry point, lint."""

import ast
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from course.release import RECIPE

ROOT = Path(__file__).resolve().parent.parent


DEV_TOOLS = {"pytest", "pytest-xdist", "pytest-timeout", "playwright", "hypothesis", "ruff",
             "nbval", "nbclient", "nbstripout", "psutil", "pyseccomp"}


def _pins(path):
    lines = [ln.strip() for ln in (ROOT / path).read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith(("#", "-e", "-r"))]


def _names(pins):
    return {p.split("==")[0] for p in pins}


def test_requirements_are_pinned_and_split_between_students_and_developers():
    student, dev = _pins("requirements.txt"), _pins("requirements-dev.txt")
    for pins in (student, dev):
        assert pins and all("==" in p for p in pins), [p for p in pins if "==" not in p]
    assert not _names(student) & DEV_TOOLS  # make lab and Binder install no test or lint tools
    assert _names(dev) == DEV_TOOLS
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()
    assert "-e ." in (ROOT / "requirements.txt").read_text()


def test_binder_uses_the_student_pins_plus_a_notebook_that_accepts_our_jupyterlab():
    binder, student = _pins("binder/requirements.txt"), _pins("requirements.txt")
    assert binder[:len(student)] == student and _names(binder[len(student):]) == {"notebook"}
    assert "-e" not in (ROOT / "binder/requirements.txt").read_text()


def test_binder_start_sets_one_blas_thread_and_the_lab_settings_and_runs_the_command(tmp_path):
    start = ROOT / "binder/start"
    assert start.stat().st_mode & stat.S_IXUSR
    show = ("import os; print(os.environ['OPENBLAS_NUM_THREADS']); "
            "print(os.environ['JUPYTER_CONFIG_PATH'])")
    for before, after in ((None, []), ("/hub/etc", ["/hub/etc"])):  # Binder's own path is kept
        env = {k: v for k, v in os.environ.items() if k != "JUPYTER_CONFIG_PATH"}
        if before:
            env["JUPYTER_CONFIG_PATH"] = before
        out = subprocess.run([str(start), sys.executable, "-c", show], cwd=tmp_path, env=env,
                             capture_output=True, text=True, check=True).stdout.split()
        assert out[0] == "1"
        assert out[1].split(os.pathsep) == [str(ROOT / "jupyter-config"), *after]


def test_binder_post_build_installs_the_package_without_touching_pins():
    post = ROOT / "binder/postBuild"
    assert post.stat().st_mode & stat.S_IXUSR
    text = post.read_text()
    assert "set -e" in text and "pip install --no-deps -e ." in text


def test_ci_runs_make_test_and_nothing_else():
    commands = [ln for ln in (ROOT / ".ci/run").read_text().splitlines()
                if ln.strip() and not ln.startswith("#") and not ln.startswith("set ")
                and not ln.startswith("cd ")]
    assert commands == ["make test"]


def test_make_lab_passes_allow_root_exactly_when_running_as_root():
    out = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True).stdout
    lab = next(ln for ln in out.splitlines() if "jupyter lab" in ln)
    assert ("--allow-root" in lab) == (os.geteuid() == 0)
    assert "OPENBLAS_NUM_THREADS=1" in lab  # one BLAS thread per kernel, as in make test
    assert "notebooks/01_why_normalize.ipynb" in lab
    # the settings tests/test_lab.py checks in a running server: a terminal's python, no news
    assert f'JUPYTER_CONFIG_PATH="{ROOT}/jupyter-config' in lab


def test_ruff_is_clean():
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "course", "tests", "benchmarks"],
                         cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_dataset_ships_with_its_licence():
    readme = (ROOT / "course/data/README.md").read_text()
    assert "CC BY 4.0" in readme and (ROOT / "course/data/digits.csv.gz").exists()


def _third_party_imports(files):
    names = set()
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    dist = {"IPython": "ipython", "PIL": "pillow"}  # import name -> distribution, where they differ
    return {dist.get(n, n) for n in names - set(sys.stdlib_module_names) - {"course"}}


def test_pyproject_declares_exactly_what_the_package_imports():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    files = set((ROOT / "course").rglob("*.py"))
    grader = {f for f in files if f.relative_to(ROOT / "course").parts[0] == "grade"}
    assert set(project["dependencies"]) == _third_party_imports(files - grader)
    assert set(project["optional-dependencies"]["grader"]) == (
        _third_party_imports(grader) - set(project["dependencies"]))


def test_license_is_an_spdx_string_with_its_file():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_committed_notebooks_pass_their_own_nbstripout_hook():
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    hook = config[config.index("kynan/nbstripout"):].split("- repo:")[0]
    rev = re.search(r"rev: (\S+)", hook).group(1)
    args = json.loads(re.search(r"args: (\[.*\])", hook).group(1))
    assert f"nbstripout=={rev}" in _pins("requirements-dev.txt")  # the same nbstripout as the hook
    exe = Path(sys.executable).with_name("nbstripout")
    notebooks = sorted(str(p) for d in ("solutions", "notebooks")
                       for p in (ROOT / d).glob("*.ipynb"))
    done = subprocess.run([str(exe), *args, "--verify", *notebooks], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_readme_module_map_names_every_module():
    readme = (ROOT / "README.md").read_text()
    modules = [p for p in (ROOT / "course").rglob("*.py") if p.stem not in ("__init__", "__main__")]
    def named(p):  # tasks/nb01.py ... are named together as `nbNN.py`
        stem = "nbNN" if re.fullmatch(r"nb\d\d", p.stem) else p.stem
        return f"`{stem}.py`" in readme or f"`{stem}`" in readme or f"{stem}.py" in readme
    missing = [str(p.relative_to(ROOT)) for p in modules if not named(p)]
    assert not missing, f"name {missing} in the README's module map ({RECIPE})"


def test_messages_pointing_to_the_recipe_name_a_readme_section_that_exists():
    section = re.search(r"'(.*)'", RECIPE).group(1)
    assert f"### {section}\n" in (ROOT / "README.md").read_text()


def test_the_readme_counts_what_the_course_has():
    """Numbers the README states about the course are the course's: notebooks and points."""
    from course.notebook import solution_paths
    from course.tasks import all_tasks

    readme = " ".join((ROOT / "README.md").read_text().split())  # line breaks folded
    words = {6: "six", 7: "seven", 8: "eight", 9: "nine"}
    n = len(solution_paths())
    assert f"{words.get(n, n)} Jupyter notebooks" in readme, f"count the notebooks ({RECIPE})"
    total = sum(t.points for t in all_tasks().values())
    # notebook 02's classic slip, ddof=1, loses that exercise's points
    ddof_lost = all_tasks()[("02_forward_pass", "batchnorm_forward")].points
    assert f"holds the {total} auto-graded points" in readme, f"state {total} points ({RECIPE})"
    assert f"a perfect student {total}," in readme, f"state {total} points ({RECIPE})"
    assert f"`ddof=1` loses exactly that exercise's {ddof_lost:g} points" in readme


def test_what_instructors_write_in_the_clone_is_ignored_by_git():
    """Submissions, the nbgrader course (solutions, hidden seeds), the grader's output (its
    secret) and a student edition written in the clone never end up in a commit."""
    for path in ("submissions/alice/02_forward_pass.ipynb", "submissions/bob.ipynb",
                 "nbgrader-course/source/batchnorm/02_forward_pass.ipynb",
                 "nbgrader-course/gradebook.db", "grading-out/.secret",
                 "student-edition/README.md"):
        done = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT)
        assert done.returncode == 0, f"{path} is not ignored by .gitignore"
    tracked = subprocess.run(["git", "check-ignore", "-q", "notebooks/02_forward_pass.ipynb"],
                             cwd=ROOT)
    assert tracked.returncode == 1  # the patterns are not so broad that they hide the course
