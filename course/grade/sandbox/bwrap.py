"""The bubblewrap command line that confines one student sandbox, and a probe that it works.

Inside: uid 1000 without capabilities in a user namespace of its own (that may hold no further
user namespace), new PID, mount, IPC, UTS, cgroup and network namespaces, its own session, a fresh
/proc that shows only the sandbox's processes, a read-only minimal /dev, and read-only binds of
the system's /usr, the interpreter, the environment's site-packages and one grading copy of
`course`. The only writable places are two private size-limited tmpfs: /tmp (scratch, HOME and
TMPDIR) and /dev/shm. Every process runs under the seccomp filter of `seccomp_filter`. The
sandbox dies with the grader.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from course.grade.sandbox import seccomp_filter
from course.grade.sandbox.copy import python_paths

COPY = "/grade/copy"  # where the grading copy of `course` appears inside
MPL = "/grade/mpl"  # a read-only copy of matplotlib's font cache
EXTRA = "/grade/extra"  # extra sys.path folders (test registries), /grade/extra/0, ...
SCRATCH = "/tmp"
SHM = "/dev/shm"
SHM_BYTES = 16 * 2**20  # POSIX shared memory and semaphores (multiprocessing) of one sandbox
UID = 1000  # the student's uid inside
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


def command(argv, copy, extra=(), mpl=None, tmpfs_bytes=256 * 2**20, env=None, pid1=False):
    """(bwrap argv, descriptors to pass): argv in a fresh sandbox seeing only what grading needs.

    pid1: argv itself is the sandbox's pid 1 (the zygote), not bwrap's init, so no process the
    student can reach is left without a master. The caller passes the descriptors with
    Popen(pass_fds=...) and closes them after the start."""
    args = [executable() or "bwrap", "--unshare-user", "--disable-userns", "--unshare-pid",
            "--unshare-ipc", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--uid", str(UID), "--gid", str(UID), "--hostname", "sandbox",
            "--die-with-parent", "--new-session", "--clearenv",
            *(["--as-pid-1"] if pid1 else []),
            # The scratch tmpfs first: the read-only binds after it stay visible even when the
            # environment itself lives below /tmp (a CI clone, a throwaway venv).
            "--perms", "1777", "--size", str(int(tmpfs_bytes)), "--tmpfs", SCRATCH,
            *_system_binds(), "--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(SHM_BYTES), "--tmpfs", SHM,
            "--remount-ro", "/dev",  # /dev is a host-sized tmpfs: nothing to write there
            "--ro-bind", str(copy), COPY]
    if mpl is not None:
        args += ["--ro-bind", str(mpl), MPL]
    for i, p in enumerate(extra):
        args += ["--ro-bind", str(p), f"{EXTRA}/{i}"]
    # The root holding the mount points is one more host-sized tmpfs: read-only once they exist.
    args += ["--remount-ro", "/"]
    fds = [seccomp_filter.fd()]  # last: nothing above can fail and leave it open
    args += ["--seccomp", str(fds[0])]
    for key, value in (env or {}).items():
        args += ["--setenv", key, value]
    return args + ["--chdir", SCRATCH, "--", *argv], fds


def run(argv, copy, **kwargs):
    """Run argv in a sandbox to the end (the probe and the benchmark): a CompletedProcess."""
    timeout = kwargs.pop("timeout", 30)
    args, fds = command(argv, copy, **kwargs)
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              pass_fds=fds)
    finally:
        for fd in fds:
            os.close(fd)


_probe = None


def probe():
    """None if a sandbox can run here, else the reason in one line (checked once per run)."""
    global _probe
    if _probe is None:
        if executable() is None:
            _probe = "bwrap (bubblewrap) is not installed"
        else:
            _probe = seccomp_filter.problem() or ""
        if not _probe:
            try:
                proc = run([sys.executable, "-I", "-c", "print('ok')"], Path(__file__).parent)
                ok = proc.returncode == 0 and proc.stdout.strip() == "ok"
                _probe = "" if ok else \
                    f"bwrap cannot start a sandbox here: {proc.stderr.strip()[:200]}"
            except (OSError, subprocess.TimeoutExpired) as exc:
                _probe = f"bwrap cannot start a sandbox here: {exc}"
    return _probe or None
