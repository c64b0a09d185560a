"""The suite's own rules, run for real: under `make test` (COURSE_NO_SKIP=1) a skip fails the run
with its reason, elsewhere it stays a one-line skip; a hung test fails with its name; every notebook
copy is executed by exactly one runner."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIPPING = '''
import pytest
pytest.importorskip("a_module_nobody_installed", reason="the optional part is missing")

def test_never_reached():
    pass
'''
SKIPPING_TEST = '''
import pytest

@pytest.mark.skipif(True, reason="the component is absent")
def test_marked():
    pass

def test_inside():
    pytest.skip("decided inside the test")

@pytest.mark.xfail(reason="a known failure is not a skip")
def test_xfail():
    assert False
'''
HANGING = '''
import time

def test_hangs_forever():
    time.sleep(600)
'''


def _pytest(tmp_path, files, env_extra=(), args=()):
    """Run pytest in a subprocess on `files` with the suite's real conftest; return the result."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "COURSE_NO_SKIP"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "-c", os.devnull, "--rootdir", str(tmp_path), *args,
                           str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)


def test_skips_stay_skips_outside_make_test(tmp_path):
    proc = _pytest(tmp_path, {"test_a.py": SKIPPING_TEST, "test_b.py": SKIPPING})
    assert proc.returncode == 0, proc.stdout
    assert "3 skipped, 1 xfailed" in proc.stdout
    for reason in ("the component is absent", "decided inside the test",
                   "the optional part is missing"):
        assert reason in proc.stdout  # -rs names each reason in one line


def test_under_make_test_every_skip_fails_with_its_reason(tmp_path):
    proc = _pytest(tmp_path / "a", {"test_a.py": SKIPPING_TEST}, {"COURSE_NO_SKIP": "1"})
    assert proc.returncode == 1, proc.stdout
    for reason in ("the component is absent", "decided inside the test"):
        assert f"nothing may skip): {reason}" in proc.stdout, proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("1 failed, 1 xfailed, 1 error"), proc.stdout
    # A whole module that skips at import is a collection error: the run stops, with the reason.
    proc = _pytest(tmp_path / "b", {"test_b.py": SKIPPING}, {"COURSE_NO_SKIP": "1"})
    assert proc.returncode == 2 and "nothing may skip): the optional part is missing" in \
        proc.stdout, proc.stdout


def test_a_hung_test_fails_with_its_name(tmp_path):
    proc = _pytest(tmp_path, {"test_h.py": HANGING}, args=["-o", "timeout=2"])
    assert proc.returncode != 0
    assert "test_hangs_forever" in proc.stdout and "Timeout" in proc.stdout, proc.stdout[-2000:]


def test_the_project_sets_a_timeout_and_runs_notebooks_once():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert 0 < int(conf["timeout"]) <= 600 and conf["timeout_method"] == "signal"
    # The browser suite executes every notebook of solutions/ and notebooks/; nbval would run
    # each a second time if those folders were collected by default.
    assert conf["testpaths"] == ["tests"]
    make = (ROOT / "Makefile").read_text()
    recipe = make.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "COURSE_NO_SKIP=1" in recipe and "COURSE_REQUIRE_TORCH=1" in recipe
    assert "solutions" not in recipe and "notebooks" not in recipe
