"""The package as a JupyterHub image gets it: a built wheel installed (not editable) into a fresh
venv, used from a folder that is not the repository. The grader must grade exactly as in the
repository (it reads the shipped student notebooks), and release must stop with a clear error."""

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cached_venv import ROOT, cached_venv, run

# The first test builds a throwaway venv (pip, minutes on a loaded machine): a larger limit.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _student_pins(tmp):
    """requirements.txt without its `-e .` line: the course itself comes from the wheel."""
    pins = tmp / "pins.txt"
    pins.write_text("".join(ln for ln in (ROOT / "requirements.txt").read_text().splitlines(True)
                            if not ln.startswith("-e")))
    return pins


def _grader_pins():
    """The `grader` extra of pyproject.toml, at the versions requirements-dev.txt pins."""
    pins = {ln.split("==")[0]: ln.split(";")[0].strip()
            for ln in (ROOT / "requirements-dev.txt").read_text().splitlines() if "==" in ln}
    extra = re.search(r"^grader = \[(.*)\]", (ROOT / "pyproject.toml").read_text(), re.M)
    return [pins[name.strip().strip('"')] for name in extra.group(1).split(",")]


@pytest.fixture(scope="module")
def installed(module_tmp):
    pins = _student_pins(module_tmp)

    def build(py, env):  # the student pins plus the grader extra's, pinned where make test's are
        run([py, "-m", "pip", "install", "-q", "-r", pins, *_grader_pins()], env)
    py, env = cached_venv("installed", ["requirements.txt", "requirements-dev.txt"], build)
    wheels = module_tmp / "wheels"
    run([py, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, ROOT], env)
    (wheel,) = wheels.glob("bn_course-*.whl")
    run([py, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", wheel], env)
    elsewhere = module_tmp / "elsewhere"
    elsewhere.mkdir()
    return py, env, elsewhere


def test_the_installed_package_is_not_the_repository(installed):
    py, env, cwd = installed
    where = run([py, "-c", "import course; print(course.__file__)"], env, cwd=cwd).stdout
    assert "site-packages" in where and not where.startswith(str(ROOT / "course"))


def test_the_installed_grader_lists_the_same_questions_as_the_repository(installed):
    py, env, cwd = installed
    there = run([py, "-m", "course.grade", "--list"], env, cwd=cwd).stdout
    here = subprocess.run([sys.executable, "-m", "course.grade", "--list"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout
    assert there == here and "by hand" in there


def test_the_installed_grader_gives_a_perfect_submission_full_marks(installed, tmp_path):
    py, env, cwd = installed
    sub = tmp_path / "perfect"
    shutil.copytree(ROOT / "solutions", sub)
    out = tmp_path / "out"
    run([py, "-m", "course.grade", sub, "--out", out, "--jobs", "2"], env, cwd=cwd, timeout=600)
    (row,) = csv.DictReader((out / "grades.csv").open())
    assert row["status"] == "ok" and float(row["total"]) == float(row["max_total"]) > 30


def test_release_and_the_nbgrader_export_stop_with_a_clear_error_when_installed(installed):
    py, env, cwd = installed
    for module in ("course.release", "course.nbgrader_export"):
        args = ["--check"] if module == "course.release" else [str(cwd / "nbg")]
        done = run([py, "-m", module, *args], env, cwd=cwd, check=False)
        assert done.returncode == 2 and "clone of the repository" in done.stderr, done.stderr


def test_the_wheel_ships_every_student_notebook(installed):
    py, env, cwd = installed
    share = Path(run([py, "-c", "import sys; print(sys.prefix)"], env, cwd=cwd).stdout.strip())
    nbs = sorted((share / "share" / "bn-course" / "notebooks").glob("*.ipynb"))
    assert [p.name for p in nbs] == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
