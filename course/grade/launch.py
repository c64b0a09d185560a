"""Start and stop student processes: forked from a warm zygote, or spawned from scratch.

Either way a student process starts in its own session with a minimal environment, and when it
is done everything it started is killed: its process group, its descendants, and any process
carrying its marker in the environment (children that escaped with setsid).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is pinned, but the grader works without it
    psutil = None


def env_for(marker, work):
    """A minimal environment: no PYTHON* variables, one BLAS thread, a headless backend."""
    env = {"PATH": os.defpath, "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8",
           "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "COURSE_GRADE_RUN": marker}
    try:  # reuse the font cache instead of rebuilding it in every scratch HOME
        import matplotlib
        env["MPLCONFIGDIR"] = matplotlib.get_cachedir()
    except Exception:  # noqa: BLE001
        pass
    return env


class Spawned:
    """A student process started from scratch: `python -I -m course.grade.harness`."""

    def __init__(self, env, work, log):
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "course.grade.harness"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=log, cwd=work, env=env, start_new_session=True,
            close_fds=True)
        self.pid, self.ctl, self.res = self.proc.pid, self.proc.stdin, self.proc.stdout

    def wait(self):
        return self.proc.wait()

    def close(self):
        self.ctl.close()
        self.res.close()


class Forked:
    """A student process forked by a zygote; its exit code comes back from the zygote."""

    def __init__(self, zygote, pid, ctl, res):
        self.zygote, self.pid = zygote, pid
        self.ctl, self.res = os.fdopen(ctl, "wb", buffering=0), os.fdopen(res, "rb", buffering=0)

    def wait(self):
        try:
            return self.zygote.exit_code(self.pid)
        except (OSError, ValueError):  # the zygote died or hung: never reuse it
            self.zygote.broken = True
            raise

    def close(self):
        self.ctl.close()
        self.res.close()


class Zygote:
    """A warm process that imported numpy, matplotlib and the tasks once and forks per notebook.

    A fork of a process that never ran student code is as fresh as a new interpreter, without
    paying ~0.5 s of imports for every student notebook.
    """

    def __init__(self, registry, path):
        self.broken = False
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.home = tempfile.mkdtemp(prefix="course-grade-zygote-")
        env = env_for("", self.home)
        del env["COURSE_GRADE_RUN"]
        self.proc = subprocess.Popen([sys.executable, "-I", "-m", "course.grade.harness",
                                      "--zygote"], stdin=theirs, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=self.home, env=env,
                                     start_new_session=True, close_fds=True)
        theirs.close()
        self.sock.settimeout(120)
        self.sock.send(json.dumps({"registry": registry, "path": path}).encode())
        if not json.loads(self.sock.recv(1 << 16) or b"{}").get("ready"):
            raise OSError("zygote did not start")

    def start(self, env, work, log):
        ctl_r, ctl_w = os.pipe()
        res_r, res_w = os.pipe()
        try:
            socket.send_fds(self.sock, [json.dumps({"env": env, "work": work}).encode()],
                            [ctl_r, res_w, log.fileno()])
            reply = json.loads(self.sock.recv(1 << 16) or b"{}")
        except BaseException:
            for fd in (ctl_w, res_r):
                os.close(fd)
            raise
        finally:
            os.close(ctl_r)
            os.close(res_w)
        if "pid" not in reply:
            os.close(ctl_w)
            os.close(res_r)
            raise OSError("zygote did not fork")
        return Forked(self, reply["pid"], ctl_w, res_r)

    def exit_code(self, pid):
        reply = json.loads(self.sock.recv(1 << 16) or b"{}")
        if reply.get("pid") != pid:
            raise OSError("zygote lost track of its child")
        return reply["code"]

    def close(self):
        self.sock.close()
        try:
            self.proc.wait(timeout=2 if self.broken else 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


FORK = sys.platform.startswith("linux") and hasattr(socket, "send_fds")
_zygotes, _zygote_lock = {}, threading.Lock()


def launch(plan, env, work, log):
    """A student process: forked from this thread's zygote where possible, else spawned."""
    if not FORK:
        return Spawned(env, work, log)
    key = (threading.get_ident(), plan.registry, tuple(plan.path))
    for _ in range(2):
        with _zygote_lock:
            zygote = _zygotes.get(key)
            if zygote is not None and zygote.broken:
                del _zygotes[key]
                zygote.close()
                zygote = None
        try:
            if zygote is None:
                zygote = Zygote(plan.registry, list(plan.path))
                with _zygote_lock:
                    _zygotes[key] = zygote
            return zygote.start(env, work, log)
        except (OSError, ValueError):
            with _zygote_lock:
                _zygotes.pop(key, None)
            if zygote is not None:
                zygote.close()
    return Spawned(env, work, log)


def shutdown():
    """Stop every zygote (the grader calls this when the batch is done)."""
    with _zygote_lock:
        zygotes = list(_zygotes.values())
        _zygotes.clear()
    for z in zygotes:
        z.close()


def kill_all(proc, marker, started):
    """Kill the process group, every descendant, and anything carrying our marker."""
    victims = []
    if psutil is not None:
        try:
            victims = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if psutil is not None:  # children that left the group (setsid) or were orphaned
        for p in psutil.process_iter(["create_time"]):
            try:
                if p.pid != os.getpid() and p.info["create_time"] >= started - 1 and \
                        p.environ().get("COURSE_GRADE_RUN") == marker:
                    victims.append(p)
            except psutil.Error:
                continue
        for p in victims:
            try:
                p.kill()
            except psutil.Error:
                pass
    proc.close()
    try:
        return proc.wait()
    except (OSError, ValueError):  # the zygote died with its child: start a new one next time
        return None
