"""Throwaway virtual environments for tests that need other tools than the test venv's (Binder's
base, real nbgrader): built once per change of their inputs in ROOT/.cache/ and reused."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"


def run(cmd, env=None, cwd=ROOT, timeout=900, check=True):
    """Run a command; on failure (when `check`), fail with the tail of its output."""
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"{cmd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def cached_venv(name, inputs, build, extra_key=""):
    """(python, env) of the venv ROOT/.cache/<name>-<hash of inputs>; `build(python, env)` fills
    it the first time. A venv is marked built only when `build` finished, so an interrupted build
    starts again from scratch."""
    digest = hashlib.sha256(extra_key.encode())
    for f in inputs:
        digest.update((ROOT / f).read_bytes())
    venv = CACHE / f"{name}-{digest.hexdigest()[:12]}"
    py = venv / "bin" / "python"
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)  # the venv imports its own packages, never the caller's
    env.pop("COURSE_REQUIRE_TORCH", None)  # these venvs have no PyTorch on purpose
    if not (venv / ".built").exists():
        run([sys.executable, "-m", "venv", "--clear", venv])
        build(py, env)
        (venv / ".built").touch()
    return py, env
