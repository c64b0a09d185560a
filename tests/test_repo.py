"""Repository hygiene: pins, Binder, CI entry point, lint."""

import ast
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _pins(path):
    lines = [ln.strip() for ln in (ROOT / path).read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#") and not ln.startswith("-e")]


def test_requirements_are_pinned_and_binder_uses_the_same_pins():
    pins = _pins("requirements.txt")
    assert pins and all("==" in p for p in pins), [p for p in pins if "==" not in p]
    assert pins == _pins("binder/requirements.txt")
    assert "-e ." in (ROOT / "requirements.txt").read_text()
    assert "-e" not in (ROOT / "binder/requirements.txt").read_text()


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
    assert "notebooks/01_why_normalize.ipynb" in lab


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
    dist = {"IPython": "ipython"}  # import name -> distribution name, where they differ
    return {dist.get(n, n) for n in names - set(sys.stdlib_module_names) - {"course"}}


def test_pyproject_declares_exactly_what_the_package_imports():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    files = set((ROOT / "course").rglob("*.py"))
    grader = {f for f in files if f.relative_to(ROOT / "course").parts[0] == "grade"}
    assert set(project["dependencies"]) == _third_party_imports(files - grader)
    assert set(project["optional-dependencies"]["grader"]) == (
        _third_party_imports(grader) - set(project["dependencies"]))
