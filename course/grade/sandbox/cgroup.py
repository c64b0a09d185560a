"""A process-count limit per sandbox that also holds for root: a pids cgroup per sandbox.

RLIMIT_NPROC (set in every student process) counts per user namespace, so it limits a sandbox,
but the kernel never applies it to a host root uid. Where the grader may create cgroups (as root,
or in a delegated cgroup v2 subtree), each sandbox also gets a pids cgroup of its own: bwrap
starts through `sh`, which moves itself into the cgroup and then execs bwrap, so every process
of the sandbox is counted from its first fork. `available()` says which limit applies.
"""

import itertools
import os
import signal
import subprocess
import threading
import time

_counter = itertools.count()
_lock = threading.Lock()
_live = set()  # cgroup folders this run made and has not removed yet
_base = None  # the folder new cgroups go in, or "" when none can be made
WRAP = 'echo $$ > "$0/cgroup.procs" && exec "$@"'  # sh -c WRAP CGROUP argv...


def _pids_folder():
    """The pids controller folder of our own cgroup (v1 hierarchy or v2), or None."""
    mounts = {}
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, right = line.split(" - ", 1)
                fstype, _, options = right.split()[:3]
                point = left.split()[4]
                if fstype == "cgroup" and "pids" in options.split(","):
                    mounts["v1"] = point
                elif fstype == "cgroup2":
                    mounts.setdefault("v2", point)
        with open("/proc/self/cgroup") as f:
            lines = [ln.rstrip("\n").split(":", 2) for ln in f]
    except OSError:
        return None
    for _, controllers, path in lines:
        if "pids" in controllers.split(",") and "v1" in mounts:
            return mounts["v1"] + path
    for hierarchy, _, path in lines:
        if hierarchy == "0" and "v2" in mounts:
            folder = mounts["v2"] + path
            try:
                with open(os.path.join(folder, "cgroup.controllers")) as f:
                    if "pids" in f.read().split():
                        return folder
            except OSError:
                return None
    return None


def available():
    """The folder sandboxes' pids cgroups are made in, or None (then RLIMIT_NPROC alone)."""
    global _base
    with _lock:
        if _base is None:
            _base = ""
            folder = _pids_folder()
            if folder is not None:
                probe = os.path.join(folder, f"course-grade-probe-{os.getpid()}")
                try:
                    os.mkdir(probe)
                    try:  # pids.max exists (the controller is on) and a process may join it
                        ok = os.path.exists(os.path.join(probe, "pids.max")) and \
                            subprocess.run(wrap(probe, ["true"]), timeout=10).returncode == 0
                    finally:
                        os.rmdir(probe)
                    _base = folder if ok else ""
                except (OSError, subprocess.SubprocessError):
                    pass
        return _base or None


def create(limit):
    """A new pids cgroup allowing `limit` tasks; its folder, or None where none can be made."""
    base = available()
    if base is None:
        return None
    folder = os.path.join(base, f"course-grade-{os.getpid()}-{next(_counter)}")
    try:
        os.mkdir(folder)
        with open(os.path.join(folder, "pids.max"), "w") as f:
            f.write(str(int(limit)))
    except OSError:
        return None
    with _lock:
        _live.add(folder)
    return folder


def wrap(folder, argv):
    """argv started inside the cgroup (unchanged when there is none)."""
    return argv if folder is None else ["/bin/sh", "-c", WRAP, folder, *argv]


def remove(folder, wait=2.0):
    """Kill whatever is left in the cgroup and remove it (quietly, if it is already gone)."""
    if folder is None:
        return
    end = time.monotonic() + wait
    while True:
        try:
            with open(os.path.join(folder, "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.rmdir(folder)
            break
        except FileNotFoundError:
            break
        except OSError:  # busy until the killed processes are gone
            if time.monotonic() > end:
                return  # left for remove_all at the end of the run
            time.sleep(0.01)
    with _lock:
        _live.discard(folder)


def remove_all():
    """Remove every cgroup this run made (the grader calls this at the end)."""
    with _lock:
        folders = list(_live)
    for folder in folders:
        remove(folder, wait=5.0)
