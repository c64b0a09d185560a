"""The command line: batches, resume, --list, a student's own score table."""

import subprocess

import pytest
from grade_helpers import COURSE, LIMITS, PY, SOURCES, ZOO_NB, grade, write

from course.release import student_version

pytestmark = pytest.mark.skipif(not SOURCES, reason="no solution notebook with graded tasks yet")


def test_batch_mixing_everything_completes(zoo):
    rows = zoo["rows"]
    assert len(rows) == zoo["size"], sorted(rows)
    assert f"graded {zoo['size']} students" in zoo["proc"].stderr


def test_resume_skips_students_already_graded(zoo, tmp_path):
    out = tmp_path / "out"
    subs = zoo["tmp"] / "submissions"
    grade(out, subs / "full.ipynb", extra=["--notebooks", ZOO_NB])
    rows, proc = grade(out, subs / "full.ipynb", subs / "untouched.ipynb",
                       extra=["--resume", "--notebooks", ZOO_NB])
    assert sorted(rows) == ["full", "untouched"]
    assert "graded 1 students" in proc.stderr and "1 skipped" in proc.stderr


def test_list_shows_every_question_with_kind():
    proc = subprocess.run([PY, "-m", "course.grade", "--list"], capture_output=True, text=True,
                          check=True)
    for q in COURSE.questions:
        line = next(ln for ln in proc.stdout.splitlines()
                    if f" {q.grade_id} " in f" {ln} " and q.notebook in ln)
        assert q.notebook in line and ("by hand" if q.manual else "auto") in line
        assert all(f in line for f in q.functions)


def test_student_sees_a_score_table(tmp_path):
    nb_id = ZOO_NB
    path = write(tmp_path / f"{nb_id}.ipynb", student_version(SOURCES[nb_id], nb_id))
    proc = subprocess.run([PY, "-m", "course.grade", str(path), *LIMITS], capture_output=True,
                          text=True, check=True)
    assert "total (auto-graded)" in proc.stdout and "not implemented yet" in proc.stdout
    assert not (tmp_path / "grades.csv").exists()
