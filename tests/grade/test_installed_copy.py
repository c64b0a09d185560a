"""A grader installed from the wheel: the real `course` sits in site-packages, which the sandbox
mounts. A student process that drops the grading copy from sys.path and imports `course` again
must find the copy there too (bound over the installed package), never the real one."""

import csv
import shutil

import pytest
from cached_venv import run
from grade_helpers import SOURCES, with_answer, write
from test_installed import installed  # noqa: F401 - the fixture: the wheel in a fresh venv

from course.grade.sandbox import bwrap

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800),
              pytest.mark.skipif(bwrap.probe() is not None, reason="needs bubblewrap")]
NB = "02_forward_pass"

REIMPORT = '''import sys
def batchnorm_forward(x, gamma, beta, bn_param):
    sys.path[:] = [p for p in sys.path if "/grade/" not in p and "course-grade-copies" not in p]
    for name in [m for m in sys.modules if m == "course" or m.startswith("course.batchnorm")]:
        del sys.modules[name]
    import course.batchnorm as found
    return found.batchnorm_forward(x, gamma, beta, bn_param)
'''


def _grade(py, env, cwd, tmp, *extra):
    sub = tmp / "subs" / "reimport.ipynb"
    write(sub, with_answer(SOURCES[NB], "batchnorm_forward", REIMPORT))
    out = tmp / ("out" + "".join(extra).replace("-", "_"))
    shutil.rmtree(out, ignore_errors=True)
    run([py, "-m", "course.grade", sub, "--out", out, "--jobs", "1", *extra], env, cwd=cwd,
        timeout=600)
    with open(out / "grades.csv", newline="") as f:
        return next(csv.DictReader(f))


def test_reimporting_course_finds_the_copy_not_the_installed_package(installed, tmp_path):  # noqa: F811
    py, env, cwd = installed
    # The control: unconfined, the installed package is one import away, and the route is real.
    assert float(_grade(py, env, cwd, tmp_path, "--no-sandbox")[f"{NB}:batchnorm_forward"]) == 3
    row = _grade(py, env, cwd, tmp_path)
    assert float(row[f"{NB}:batchnorm_forward"]) == 0, row
