"""course.selfgrade: a student's own score, by notebook name from any folder, with or without
the grader's bubblewrap sandbox (Binder and macOS have none)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course import selfgrade
from course.notebook import NOTEBOOKS, SOLUTIONS

ROOT = Path(__file__).resolve().parent.parent


def test_a_notebook_is_found_by_name_from_any_folder_and_a_path_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert selfgrade.find("02_forward_pass") == NOTEBOOKS / "02_forward_pass.ipynb"
    assert selfgrade.find("02_forward_pass.ipynb") == NOTEBOOKS / "02_forward_pass.ipynb"
    (tmp_path / "02_forward_pass.ipynb").write_text("{}")  # the student's own copy here
    assert selfgrade.find("02_forward_pass.ipynb") == tmp_path / "02_forward_pass.ipynb"
    assert selfgrade.find("99_nothing") is None


def _selfgrade(cwd, *args, path=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", "course.selfgrade", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_an_unknown_notebook_is_named_and_nothing_is_graded(tmp_path):
    done = _selfgrade(tmp_path, "02_forward_pas")
    assert done.returncode == 2 and "no such notebook: 02_forward_pas" in done.stderr
    assert done.stdout == ""


@pytest.mark.slow
def test_without_bubblewrap_it_grades_in_a_students_words(tmp_path):
    """No bwrap on PATH (a laptop, Binder): one plain note, the grader's score, no warning."""
    shutil.copy(SOLUTIONS / "02_forward_pass.ipynb", tmp_path / "mine.ipynb")  # solved
    done = _selfgrade(tmp_path, "mine.ipynb", path=str(tmp_path))  # no bwrap to be found
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(selfgrade.NO_SANDBOX_NOTE)
    assert "batchnorm_forward (batchnorm_forward)       3 / 3  all 3 hidden cases pass" in \
        done.stdout, done.stdout
    assert "warning" not in done.stderr
    assert max(len(line) for line in done.stdout.splitlines()) <= 90
