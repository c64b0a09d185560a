"""The bubblewrap command line that confines one student sandbox, and a probe that it works.

Inside: new user (uid 1000, no capabilities), PID, mount, IPC, UTS, cgroup and network
namespaces, its own session, a fresh /proc that shows only the sandbox's processes, a minimal
/dev, and read-only binds of the system's /usr, the interpreter, the environment's
site-packages and one grading copy of `course`. The only writable place is a private
size-limited tmpfs at /tmp (scratch, HOME and TMPDIR). The sandbox dies with the grader.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from course.grade.sandbox.copy import python_paths, site_view

COPY = "/grade/copy"  # where the grading copy of `course` appears inside
MPL = "/grade/mpl"  # a read-only copy of matplotlib's font cache
EXTRA = "/grade/extra"  # extra sys.path folders (test registries), /grade/extra/0, ...
SCRATCH = "/tmp"
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/fonts", "/etc/localtime")


def executable():
    """The bwrap program, or None."""
    return shutil.which("bwrap")


def _system_binds():
    args = []
    for p in SYSTEM:
        if os.path.islink(p):
            args += ["--symlink", os.readlink(p), p]
        elif os.path.isdir(p):
            args += ["--ro-bind", p, p]
    for p in SYSTEM_FILES:
        if os.path.exists(p):
            args += ["--ro-bind", os.path.realpath(p), p]
    for p in python_paths():
        if not p.startswith("/usr/") and os.path.isdir(p):
            args += ["--ro-bind", p, p]
    return args


def command(argv, copy, extra=(), mpl=None, tmpfs_bytes=256 * 2**20, env=None):
    """The bwrap argv that runs argv in a fresh sandbox seeing only what grading needs."""
    args = [executable() or "bwrap", "--unshare-all", "--unshare-user", "--uid", "1000",
            "--gid", "1000", "--hostname", "sandbox", "--die-with-parent", "--new-session",
            "--clearenv",
            # The scratch tmpfs first: the read-only binds after it stay visible even when the
            # environment itself lives below /tmp (a CI clone, a throwaway venv).
            "--size", str(int(tmpfs_bytes)), "--tmpfs", SCRATCH,
            *_system_binds(), *site_view(copy), "--proc", "/proc", "--dev", "/dev",
            "--ro-bind", str(copy), COPY]
    if mpl is not None:
        args += ["--ro-bind", str(mpl), MPL]
    for i, p in enumerate(extra):
        args += ["--ro-bind", str(p), f"{EXTRA}/{i}"]
    for key, value in (env or {}).items():
        args += ["--setenv", key, value]
    return args + ["--chdir", SCRATCH, "--", *argv]


_probe = None


def probe():
    """None if a sandbox can run here, else the reason in one line (checked once per run)."""
    global _probe
    if _probe is None:
        if executable() is None:
            _probe = "bwrap (bubblewrap) is not installed"
        else:
            empty = Path(__file__).parent
            try:
                proc = subprocess.run(command([sys.executable, "-I", "-c", "print('ok')"], empty),
                                      capture_output=True, text=True, timeout=30)
                ok = proc.returncode == 0 and proc.stdout.strip() == "ok"
                _probe = "" if ok else \
                    f"bwrap cannot start a sandbox here: {proc.stderr.strip()[:200]}"
            except (OSError, subprocess.TimeoutExpired) as exc:
                _probe = f"bwrap cannot start a sandbox here: {exc}"
    return _probe or None
