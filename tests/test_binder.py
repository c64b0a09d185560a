"""Binder as repo2docker builds it: its base environment, then binder/requirements.txt, then
postBuild; `pip check` must find nothing broken. The environment is built once per change of
those files, in .cache/ (a throwaway venv), and reused."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What repo2docker's base environment ships before our files are read.
REPO2DOCKER_BASE = ["notebook==7.4.7", "jupyterlab==4.4.9"]
INPUTS = ["binder/requirements.txt", "binder/postBuild", "pyproject.toml"]

pytestmark = pytest.mark.slow


def _run(cmd, env=None):
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def binder_env():
    key = hashlib.sha256(b"".join((ROOT / f).read_bytes() for f in INPUTS)).hexdigest()[:12]
    venv = ROOT / ".cache" / f"binder-{key}"
    py = venv / "bin" / "python"
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if not (venv / ".built").exists():
        _run([sys.executable, "-m", "venv", "--clear", str(venv)])
        _run([str(py), "-m", "pip", "install", "-q", *REPO2DOCKER_BASE], env)
        _run([str(py), "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"], env)
        _run(["bash", "binder/postBuild"], env)  # its `pip` is the venv's, first on PATH
        (venv / ".built").touch()
    return py, env


def test_pip_check_is_clean_after_the_binder_build(binder_env):
    py, env = binder_env
    assert "No broken requirements found" in _run([str(py), "-m", "pip", "check"], env)


def test_the_binder_environment_runs_the_course_and_has_no_test_tools(binder_env):
    py, env = binder_env
    out = _run([str(py), "-c", "import course.batchnorm, jupyterlab, notebook, ipywidgets; "
                "import importlib.util as u; print([m for m in ('pytest', 'playwright', 'ruff', "
                "'hypothesis') if u.find_spec(m)])"], env)
    assert out.strip() == "[]"
