"""Binder as repo2docker builds it: its base environment, then binder/requirements.txt, then
postBuild; `pip check` must find nothing broken. The environment is built once per change of
those files, in .cache/ (a throwaway venv), and reused."""

import pytest
from cached_venv import cached_venv, run

# What repo2docker's base environment ships before our files are read.
REPO2DOCKER_BASE = ["notebook==7.4.7", "jupyterlab==4.4.9"]
INPUTS = ["binder/requirements.txt", "binder/postBuild", "pyproject.toml"]

# The first test builds a throwaway venv (pip, minutes on a loaded machine): a larger limit.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def _run(cmd, env=None):
    return run(cmd, env).stdout


@pytest.fixture(scope="module")
def binder_env():
    def build(py, env):
        _run([py, "-m", "pip", "install", "-q", *REPO2DOCKER_BASE], env)
        _run([py, "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"], env)
        _run(["bash", "binder/postBuild"], env)  # its `pip` is the venv's, first on PATH
    return cached_venv("binder", INPUTS, build)


def test_pip_check_is_clean_after_the_binder_build(binder_env):
    py, env = binder_env
    assert "No broken requirements found" in _run([py, "-m", "pip", "check"], env)


def test_the_binder_environment_runs_the_course_and_has_no_test_tools(binder_env):
    py, env = binder_env
    out = _run([py, "-c", "import course.batchnorm, jupyterlab, notebook, ipywidgets; "
                "import importlib.util as u; print([m for m in ('pytest', 'playwright', 'ruff', "
                "'hypothesis') if u.find_spec(m)])"], env)
    assert out.strip() == "[]"
