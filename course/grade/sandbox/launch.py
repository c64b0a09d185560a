"""Start and stop student processes: inside a bubblewrap sandbox (or, with --no-sandbox, not).

A student process is forked from a warm zygote (a process that imported numpy, matplotlib and
the tasks once and never runs student code), or spawned from scratch. Confined, each zygote lives
in its own sandbox, keyed by grader thread and notebook: after every child it kills whatever the
child left and wipes the scratch tmpfs, and after any failure the grader throws the whole
sandbox away. Unconfined, a student process starts in its own session and everything it started
is killed by process group, descendants and an environment marker.
"""

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading

from course.grade.sandbox import bwrap
from course.grade.sandbox.copy import grading_copy, mpl_cache, remove_all
from course.grade.sandbox.harness import BOOTSTRAP

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is pinned, but the grader works without it
    psutil = None

CONFINED = True  # False only with --no-sandbox
FORK = sys.platform.startswith("linux") and hasattr(socket, "send_fds")
WORK = bwrap.SCRATCH + "/run"  # the student's cwd, HOME and TMPDIR inside the sandbox
MPLDIR = bwrap.SCRATCH + "/.mpl"
REPLY_TIMEOUT = 10.0  # a zygote that does not answer this fast is replaced
HUNG_CHILD = 0.5  # after a failure: a dead child's exit code comes at once, a hung one never


def _env(marker, work, mpl):
    """A minimal environment: no PYTHON* variables, one BLAS thread, a headless backend."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": work, "TMPDIR": work,
           "LANG": "C.UTF-8", "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "COURSE_GRADE_RUN": marker}
    if mpl:
        env["MPLCONFIGDIR"] = mpl
    return env


def env_for(marker, work):
    """The environment of one student process (work is the host folder when unconfined)."""
    if CONFINED:
        return _env(marker, WORK, MPLDIR)
    try:  # reuse the font cache instead of rebuilding it in every scratch HOME
        import matplotlib
        mpl = matplotlib.get_cachedir()
    except Exception:  # noqa: BLE001
        mpl = None
    return _env(marker, work, mpl)


_tasks_lock = threading.Lock()


def _registry_tasks(registry):
    with _tasks_lock:
        return importlib.import_module(registry).all_tasks()


def _argv(plan, zygote, work=None):
    """(argv, config): the command that starts a harness for this plan."""
    copy = grading_copy(_registry_tasks(plan.registry), plan.notebook, plan)  # per group
    if CONFINED:
        path = [bwrap.COPY] + [f"{bwrap.EXTRA}/{i}" for i in range(len(plan.path))]
        config = {"path": path, "registry": plan.registry, "confined": True,
                  "scratch": bwrap.SCRATCH, "mpl": bwrap.MPL, "work": WORK}
    else:
        config = {"path": [str(copy), *plan.path], "registry": plan.registry}
        if work:
            config["work"] = work
    argv = [sys.executable, "-I", "-c", BOOTSTRAP, json.dumps(config)]
    if zygote:
        argv.append("--zygote")
    if CONFINED:
        env = _env("", WORK, MPLDIR)
        argv = bwrap.command(argv, copy, extra=plan.path, mpl=mpl_cache(), env=env)
    return argv


class Spawned:
    """A student process started from scratch (in a sandbox of its own when confined)."""

    def __init__(self, plan, env, work, log):
        self.proc = subprocess.Popen(
            _argv(plan, False, work), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            cwd=work, env=env, start_new_session=True, close_fds=True)
        self.pid, self.ctl, self.res = self.proc.pid, self.proc.stdin, self.proc.stdout

    def end(self, failed):
        """Close the channels and kill the process (its whole sandbox when confined)."""
        _killpg(self.proc.pid)
        self.ctl.close()
        self.res.close()

    def wait(self, failed=False):
        return self.proc.wait()


class Forked:
    """A student process forked by a zygote; its exit code comes back from the zygote."""

    def __init__(self, zygote, pid, ctl, res):
        self.zygote, self.pid = zygote, pid
        self.ctl, self.res = os.fdopen(ctl, "wb", buffering=0), os.fdopen(res, "rb", buffering=0)

    def end(self, failed):
        """Close the channels (the child then exits, or is found hung by `wait`)."""
        self.ctl.close()
        self.res.close()

    def wait(self, failed=False):
        """The exit code from the zygote; a zygote that does not answer in time is replaced.

        After a failure the child may hang (a timeout): then waiting briefly is enough, and the
        whole sandbox goes."""
        try:
            self.zygote.sock.settimeout(HUNG_CHILD if failed else REPLY_TIMEOUT)
            return self.zygote.exit_code(self.pid)
        except (OSError, ValueError):  # the zygote died or hung: never reuse it
            self.zygote.broken = True
            self.zygote.kill()
            raise


def _killpg(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Zygote:
    """A warm process that imported numpy, matplotlib and the tasks once and forks per notebook."""

    def __init__(self, plan):
        self.broken = False
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.home = tempfile.mkdtemp(prefix="course-grade-zygote-")
        env = None if CONFINED else env_for("", self.home)  # confined: bwrap sets it
        self.proc = subprocess.Popen(_argv(plan, True, self.home), stdin=theirs,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     cwd=self.home, env=env,
                                     start_new_session=True, close_fds=True)
        theirs.close()
        self.sock.settimeout(120)
        if not json.loads(self.sock.recv(1 << 16) or b"{}").get("ready"):
            raise OSError("zygote did not start")
        self.sock.settimeout(REPLY_TIMEOUT)

    def start(self, env, work, log):
        ctl_r, ctl_w = os.pipe()
        res_r, res_w = os.pipe()
        try:
            socket.send_fds(self.sock, [json.dumps({"env": env, "work": env["HOME"]}).encode()],
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

    def kill(self):
        _killpg(self.proc.pid)

    def close(self):
        self.sock.close()
        try:
            self.proc.wait(timeout=2 if self.broken else 10)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()
        import shutil
        shutil.rmtree(self.home, ignore_errors=True)


_zygotes, _zygote_lock = {}, threading.Lock()


def launch(plan, env, work, log):
    """A student process: forked from this thread's zygote where possible, else spawned."""
    if not FORK:
        return Spawned(plan, env, work, log)
    key = (threading.get_ident(), plan.notebook, tuple(plan.questions), plan.registry,
           tuple(plan.path))  # one sandbox per group of questions (copy.groups)
    for _ in range(2):
        with _zygote_lock:
            zygote = _zygotes.get(key)
            if zygote is not None and zygote.broken:
                del _zygotes[key]
                zygote.close()
                zygote = None
        try:
            if zygote is None:
                zygote = Zygote(plan)
                with _zygote_lock:
                    _zygotes[key] = zygote
            return zygote.start(env, work, log)
        except (OSError, ValueError):
            with _zygote_lock:
                _zygotes.pop(key, None)
            if zygote is not None:
                zygote.broken = True
                zygote.kill()
                zygote.close()
    return Spawned(plan, env, work, log)


def shutdown():
    """Stop every zygote and delete the grading copies (the grader calls this at the end)."""
    with _zygote_lock:
        zygotes = list(_zygotes.values())
        _zygotes.clear()
    for z in zygotes:
        z.close()
    remove_all()


def kill_all(proc, marker, started, failed):
    """End a student process and everything it started; its exit code, or None."""
    victims = []
    if not CONFINED and psutil is not None:
        try:
            victims = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            pass
    if not CONFINED and isinstance(proc, Forked):
        _killpg(proc.pid)  # unconfined, the zygote's child is a host process we can name
    proc.end(failed)
    if not CONFINED and psutil is not None:  # children that left the group (setsid) or orphans
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
    try:
        return proc.wait(failed)
    except (OSError, ValueError):  # the zygote died with its child: start a new one next time
        return None
