"""The program that runs inside a student process: setup cells, answer cells, hidden cases.

    python -I -m course.grade.harness      (started by course.grade.runner, never by hand)

fd 0 and fd 1 arrive as the grader's control and result pipes. Before any student code runs,
they are moved to private close-on-exec descriptors, fd 0 becomes /dev/null and fd 1 joins
stderr in the output log, so whatever the student prints never reaches the result channel.
Then the limits apply (memory, output, CPU) and, where Linux Landlock exists, file writes
outside the scratch folder are refused. Only outputs travel back (JSON + .npz); judging happens
in the grader's process.
"""

import builtins
import json
import os
import re
import signal
import sys

MAGIC = re.compile(r"^([ \t]*)[%!].*$", re.MULTILINE)


def _private_channels():
    """(control fd, result fd); stdin becomes /dev/null and stdout goes to the log."""
    ctl, res = os.dup(0), os.dup(1)  # os.dup makes non-inheritable descriptors
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    return ctl, res


def _read_line(fd):
    """One JSON line from the control pipe."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 65536)
        if not chunk:
            raise EOFError("control channel closed")
        data += chunk
    return json.loads(data)


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
    """Memory (beyond what the imports already use), output file size, CPU time, no core files."""
    base = _vm_size()
    if base is not None and limits.get("memory_mb"):
        _limit("RLIMIT_AS", base + int(limits["memory_mb"]) * 2**20)
    _limit("RLIMIT_FSIZE", limits.get("output_bytes"))
    _limit("RLIMIT_CPU", limits.get("cpu_seconds"))
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


def run_question(task, ns, seed, run_case, result_cls):
    """Run the student's functions on the task's hidden cases: (JSON records, arrays)."""
    fns = [ns.get(n) if callable(ns.get(n)) else _missing(n) for n in task.functions]
    records, arrays = [], {}
    for case in task.cases(seed):
        try:
            result = run_case(task, fns, case)
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


def warm_up(registry_name, path):
    """Import what every run needs (before any limit or student code); the task registry."""
    sys.path[:0] = [p for p in path if p not in sys.path]
    import importlib

    import numpy  # noqa: F401

    try:
        import matplotlib.pyplot  # noqa: F401 - every setup cell imports it
    except ImportError:
        pass
    return importlib.import_module(registry_name).all_tasks()


def serve(job, ctl, res, tasks):
    """Limits, setup cells, the student's cells, then the hidden cases of every question."""
    from course.grade import wire  # imported before student code, so it is the real one
    from course.grade.landlock import restrict_writes
    from course.tasks.base import Result, run_case

    apply_limits(job.get("limits", {}))
    confined = bool(job.get("scratch")) and restrict_writes([job["scratch"]])
    wire.send(res, {"event": "ready", "confined": confined})

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

    seeds = _read_line(ctl)  # only now, after every student cell has run
    for gid in job["questions"]:
        wire.send(res, {"event": "question_start", "gid": gid})
        task = tasks[job["notebook"], gid]  # grade_ids are unique within a notebook only
        records, arrays = run_question(task, ns, seeds[gid], run_case, Result)
        wire.send(res, {"event": "question", "gid": gid, "cases": records}, arrays)
    wire.send(res, {"event": "done"})
    while os.read(ctl, 4096):  # stay alive until the grader has collected our children
        pass
    return 0


def main():
    ctl, res = _private_channels()
    job = _read_line(ctl)
    tasks = warm_up(job.get("registry", "course.tasks"), job.get("path", []))
    return serve(job, ctl, res, tasks)


def _child(sock, fds, header, tasks):
    """In a fresh fork of the zygote: become a student process like `main` would, then serve."""
    sock.close()
    os.setsid()
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
    return serve(_read_line(ctl), ctl, res, tasks)


def zygote():
    """A warm template process: imports once, then forks one fresh child per student notebook.

    Talks over a SOCK_SEQPACKET socket on fd 0: each request carries the child's control pipe,
    result pipe and log file as passed descriptors; replies give the pid, then the exit code.
    No student code ever runs in the zygote itself.
    """
    import socket

    sock = socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    config = json.loads(sock.recv(1 << 16))
    tasks = warm_up(config["registry"], config["path"])
    sock.send(b'{"ready": true}')
    while True:
        msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 3)
        if not msg:
            return 0
        if len(fds) != 3:
            for fd in fds:
                os.close(fd)
            continue
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                code = _child(sock, fds, json.loads(msg), tasks)
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
        sock.send(json.dumps({"pid": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


if __name__ == "__main__":
    os._exit(zygote() if sys.argv[1:] == ["--zygote"] else main())
