"""The program that runs inside a student process: setup cells, answer cells, hidden cases.

Started by course.grade.sandbox.launch, never by hand, with the grading copy of `course` first on
sys.path (`bootstrap`). fd 0 and fd 1 arrive as the grader's control and result channels. Before
any student code runs they move to private close-on-exec descriptors, fd 0 becomes /dev/null and
fd 1 joins stderr in the output log, so whatever the student prints never reaches the result
channel. Then the limits apply (memory, output, CPU). The hidden cases arrive as data after the
last answer cell ran; only outputs travel back (JSON + .npz): judging happens in the grader.
"""

import builtins
import ctypes
import os
import re
import signal
import stat
import sys

MAGIC = re.compile(r"^([ \t]*)[%!].*$", re.MULTILINE)
# `python -I -c BOOTSTRAP '<json config>' [--zygote]`: the grading copy first on sys.path.
BOOTSTRAP = ("import json, sys; c = json.loads(sys.argv[1]); sys.path[:0] = c['path']; "
             "from course.grade.sandbox import harness; harness.entry(c, sys.argv[2:])")


def _private_channels():
    """(control fd, result fd); stdin becomes /dev/null and stdout goes to the log."""
    ctl, res = os.dup(0), os.dup(1)  # os.dup makes non-inheritable descriptors
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    return ctl, res


def _vm_size():
    """Current address-space size in bytes (Linux), or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _limit(which, value):
    try:
        import resource
    except ImportError:  # Windows: no rlimits; timeouts still apply
        return
    if value is not None and hasattr(resource, which):
        resource.setrlimit(getattr(resource, which), (value, value))  # hard too: no raising it


def apply_limits(limits):
    """Memory (beyond what the imports already use), output file size, CPU time, no core files,
    and (in a sandbox) processes: RLIMIT_NPROC counts the tasks of our uid in the sandbox's own
    user namespace, so it is a limit per sandbox (the kernel exempts a host root uid)."""
    base = _vm_size()
    if base is not None and limits.get("memory_mb"):
        _limit("RLIMIT_AS", base + int(limits["memory_mb"]) * 2**20)
    _limit("RLIMIT_FSIZE", limits.get("output_bytes"))
    _limit("RLIMIT_CPU", limits.get("cpu_seconds"))
    _limit("RLIMIT_NPROC", limits.get("processes"))
    _limit("RLIMIT_CORE", 0)
    if hasattr(signal, "SIGXFSZ"):  # Python ignores it; the default kills at the output cap
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)


def strip_magics(source):
    """Replace IPython magics and shell escapes by `pass` so plain Python can run the cell."""
    return MAGIC.sub(lambda m: f"{m.group(1)}pass", source)


def _describe(exc):
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a broken stream is the student's business
            pass


def run_source(source, label, ns):
    """Execute one cell in the namespace; the error as a string, or None."""
    try:
        exec(compile(strip_magics(source), label, "exec"), ns)  # noqa: S102 - that is the point
        return None
    except BaseException as exc:  # noqa: BLE001 - SystemExit/KeyboardInterrupt too
        return _describe(exc)
    finally:
        _flush()
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            try:
                plt.close("all")
            except Exception:  # noqa: BLE001
                pass


def _missing(name):
    def missing(*args, **kwargs):
        raise NameError(f"name '{name}' is not defined (no answer cell defines it)")
    return missing


def run_question(task, ns, inputs, run_case, case_cls, result_cls):
    """Run the student's functions on the grader's hidden inputs: (JSON records, arrays)."""
    fns = [ns.get(n) if callable(ns.get(n)) else _missing(n) for n in task.functions]
    records, arrays = [], {}
    for case_inputs in inputs:
        try:
            result = run_case(task, fns, case_cls("", case_inputs))
        except BaseException as exc:  # noqa: BLE001 - sys.exit() in a student function
            result = result_cls(error=_describe(exc))
        names = {}
        for key, value in result.outputs.items():
            names[str(key)] = f"a{len(arrays)}"
            arrays[f"a{len(arrays)}"] = value
        records.append({"error": result.error, "mutated": list(result.mutated),
                        "outputs": names})
    _flush()
    return records, arrays


def warm_up(registry_name):
    """Import what every run needs (before any limit or student code); the task registry."""
    import importlib

    import numpy  # noqa: F401

    try:
        import matplotlib.pyplot  # noqa: F401 - every setup cell imports it
    except ImportError:
        pass
    return importlib.import_module(registry_name).all_tasks()


def serve(job, ctl, res, tasks):
    """Limits, setup cells, the student's cells, then the hidden cases of every question."""
    from course.grade.sandbox import wire  # imported before student code: the real one
    from course.tasks.base import Case, Result, run_case

    apply_limits(job.get("limits", {}))
    wire.send(res, {"event": "ready"})

    ns = {"__name__": "__main__", "__builtins__": builtins}
    for i, source in enumerate(job["setup"]):
        error = run_source(source, f"<setup cell {i}>", ns)
        if error is not None:
            wire.send(res, {"event": "setup_error", "error": error})
            return 2
    for i, cell in enumerate(job["cells"]):
        wire.send(res, {"event": "cell_start", "index": i})
        error = run_source(cell["source"], f"<answer cell {cell['label']}>", ns)
        wire.send(res, {"event": "cell_done", "index": i, "error": error})
    wire.send(res, {"event": "cells_done"})

    header, arrays = wire.read_frame(ctl)  # the hidden inputs: only now, after every cell ran
    cases = {gid: [wire.unpack(t, arrays or {}) for t in trees]
             for gid, trees in header["cases"].items()}
    del header, arrays
    for gid in job["questions"]:
        wire.send(res, {"event": "question_start", "gid": gid})
        task = tasks[job["notebook"], gid]  # grade_ids are unique within a notebook only
        records, out = run_question(task, ns, cases.pop(gid), run_case, Case, Result)
        wire.send(res, {"event": "question", "gid": gid, "cases": records}, out)
    wire.send(res, {"event": "done"})
    while os.read(ctl, 4096):  # stay alive until the grader has collected our children
        pass
    return 0


def main(config):
    ctl, res = _private_channels()
    from course.grade.sandbox import wire
    if config.get("work"):
        os.makedirs(config["work"], exist_ok=True)
        os.chdir(config["work"])
    job, _ = wire.read_frame(ctl)
    return serve(job, ctl, res, warm_up(config.get("registry", "course.tasks")))


def _child(sock, fds, header, tasks):
    """In a fresh fork of the zygote: become a student process like `main` would, then serve."""
    from course.grade.sandbox import wire
    sock.close()
    os.setsid()
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the zygote's pid-1 SIG_DFL
    ctl, res, log = fds
    for fd in (ctl, res):
        os.set_inheritable(fd, False)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    os.chdir(header["work"])
    os.environ.clear()
    os.environ.update(header["env"])
    job, _ = wire.read_frame(ctl)
    return serve(job, ctl, res, tasks)


def _copy_mpl(src, dest):
    """The grader's matplotlib font cache into dest, so matplotlib never rebuilds it."""
    import shutil
    os.makedirs(dest, exist_ok=True)
    for name in os.listdir(src):
        shutil.copy(os.path.join(src, name), os.path.join(dest, name))


def _clean_sandbox(writable):
    """After a student: kill every other process of the sandbox, reap them, empty every
    writable place. We are pid 1: kill(-1) reaches every process but us, and orphans are ours."""
    while True:  # again after every reaped child: one forked while we killed is not missed
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:  # nobody was left
            pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
    for folder in writable:
        wipe(folder)


def _not_dumpable():
    """No ptrace and no /proc/<pid>/mem on us for processes without privileges (our children)."""
    try:
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (OSError, AttributeError):
        pass


def wipe(folder):
    """Delete everything under folder, iteratively (a 1,200-deep tree must not recurse)."""
    stack = [os.path.join(folder, n) for n in os.listdir(folder)]
    dirs = []
    while stack:
        path = stack.pop()
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            os.chmod(path, 0o700)
            dirs.append(path)
            stack += [os.path.join(path, n) for n in os.listdir(path)]
        else:
            os.unlink(path)
    for path in reversed(dirs):
        os.rmdir(path)


def zygote(config):
    """A warm template process: imports once, then forks one fresh child per student notebook.

    Talks over a SOCK_SEQPACKET socket on fd 0: each request carries the child's control pipe,
    result pipe and log file as passed descriptors; replies give the pid, then the exit code.
    No student code ever runs in the zygote itself. Inside a sandbox the zygote is the sandbox's
    pid 1 (bwrap --as-pid-1): no signal from inside reaches it (SIGINT is left at SIG_DFL for
    that), the seccomp filter denies ptrace, and it is not dumpable. After each child it kills
    every other process of the sandbox (a daemon the child left) and empties the scratch tmpfs
    and /dev/shm, so the next student starts clean; the grader replaces the whole sandbox after
    any failure.
    """
    import json
    import socket

    sock = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    confined = bool(config.get("confined")) and os.getpid() == 1
    writable = [p for p in (config.get("scratch"), config.get("shm")) if p]
    mpl = os.environ.get("MPLCONFIGDIR")
    if mpl and config.get("mpl"):
        _copy_mpl(config["mpl"], mpl)
    tasks = warm_up(config.get("registry", "course.tasks"))
    if confined:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    _not_dumpable()
    sock.send(b'{"ready": true}')
    while True:
        msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 3)
        if not msg:
            return 0
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            continue
        header = json.loads(msg)
        if confined:
            os.makedirs(header["work"], exist_ok=True)
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                code = _child(sock, fds, header, tasks)
            except BaseException:  # noqa: BLE001 - never return into the zygote's loop
                import traceback
                traceback.print_exc()
            finally:
                _flush()
                os._exit(code)
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"pid": pid}).encode())
        _, status = os.waitpid(pid, 0)
        if confined:
            _clean_sandbox(writable)
            if mpl and config.get("mpl"):  # wiped with the rest: the student could write it
                _copy_mpl(config["mpl"], mpl)
        sock.send(json.dumps({"pid": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


def entry(config, args):
    """Run as the zygote or as a one-shot student process; never returns."""
    try:
        code = zygote(config) if args == ["--zygote"] else main(config)
    except BaseException:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        code = 70
    _flush()
    os._exit(code)
