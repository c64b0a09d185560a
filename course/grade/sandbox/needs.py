"""What a notebook's grading run needs of `course` and of installed packages, found by running it.

The student process runs the task registry's import, the notebook's official setup cells (their
imports and `use_style()`) and then only the student's code. So the grader runs the same start
once, unconfined but with no student code, in a fresh interpreter that records every call into
`course` (a profile hook) and every installed package imported. What it records is all that the
grading copy keeps working at import time; everything else becomes a stub (see `copy`).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

# A warm server in a fresh `python -I`: numpy and matplotlib imported once, then one forked child
# per request (a JSON line on stdin: path, root, registry, setup) that traces a fresh import of
# `course` and answers with one JSON line on the server's stdout.
TRACER = r"""
import json, os, sys, threading, traceback
startup = set(sys.modules)  # with what .pth files imported: never the grading run's need
import numpy
try:
    import matplotlib.pyplot
except ImportError:
    pass
answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # whatever the traced code prints never mixes with the answers

def trace(cfg):
    import importlib
    sys.path[:0] = cfg["path"]
    root, called = cfg["root"], set()

    def hook(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(root):
            code = frame.f_code
            called.add((code.co_filename, code.co_qualname, code.co_firstlineno))

    sys.setprofile(hook)
    threading.setprofile(hook)
    importlib.import_module(cfg["registry"]).all_tasks()
    from course.grade.sandbox.harness import strip_magics
    ns = {"__name__": "__main__"}
    for i, source in enumerate(cfg["setup"]):
        exec(compile(strip_magics(source), f"<setup cell {i}>", "exec"), ns)
    sys.setprofile(None)
    threading.setprofile(None)
    files = sorted({m.__file__ for name, m in list(sys.modules.items())
                    if name not in startup and isinstance(getattr(m, "__file__", None), str)})
    return {"called": sorted(called), "files": files}

for line in sys.stdin:
    answers.flush()
    pid = os.fork()
    if pid == 0:
        try:
            result = trace(json.loads(line))
        except BaseException:
            result = {"error": traceback.format_exc()[-800:]}
        answers.write(json.dumps(result) + "\n")
        answers.flush()
        os._exit(0)
    os.waitpid(pid, 0)
"""

class TraceError(RuntimeError):
    """The official start of a notebook failed outside any sandbox: the course's own bug."""


def package_root():
    """The folder holding the `course` package that the grader runs from (real path)."""
    import course
    return os.path.realpath(os.path.dirname(course.__file__))


def module_name(path, root):
    """`course.norms` for <root>/norms.py, `course.tasks` for <root>/tasks/__init__.py."""
    rel = Path(os.path.relpath(path, os.path.dirname(root))).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def unit(qualname, firstlineno):
    """The stubbable unit a code object belongs to: a top-level function `f`, a method
    `C.m`, or a lambda outside any function `<lambda>:LINE`."""
    head = qualname.split(".<locals>.")[0]
    if head.endswith("<lambda>"):
        return f"<lambda>:{firstlineno}"
    return head


_server, _server_lock = None, threading.Lock()
_home = None


def _start():
    global _server, _home
    _home = tempfile.mkdtemp(prefix="course-grade-trace-")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": _home, "LANG": "C.UTF-8",
           "MPLBACKEND": "Agg", "MPLCONFIGDIR": _mpl_dir(_home), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    _server = subprocess.Popen([sys.executable, "-I", "-c", TRACER], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=_home,
                               env=env, text=True, start_new_session=True)


def stop():
    """End the tracing server of this run, if one was started."""
    global _server, _home
    with _server_lock:
        if _server is not None:
            _server.kill()
            _server.wait()
            _server.stdin.close()
            _server.stdout.close()
        if _home is not None:
            shutil.rmtree(_home, ignore_errors=True)
        _server = _home = None


def trace(setup, registry="course.tasks", path=()):
    """(called, files): {(module, unit)} called into `course` while the task registry is imported
    and the setup cells run, and the real paths of every module file then loaded."""
    root = package_root()
    config = {"path": [os.path.dirname(root), *map(str, path)], "root": root,
              "registry": registry, "setup": list(setup)}
    with _server_lock:
        if _server is None or _server.poll() is not None:
            _start()
        try:
            _server.stdin.write(json.dumps(config) + "\n")
            _server.stdin.flush()
            answer = _server.stdout.readline()
        except OSError as exc:
            answer = json.dumps({"error": str(exc)})
    found = json.loads(answer or '{"error": "the tracer ended"}')
    if "error" in found:
        raise TraceError(f"the official start of the notebook failed: {found['error']}")
    called = {(module_name(f, root), unit(q, line)) for f, q, line in found["called"]}
    return called, [os.path.realpath(f) for f in found["files"]]


def _mpl_dir(tmp):
    """A matplotlib config folder holding the grader's font cache (no rebuild)."""
    dest = os.path.join(tmp, "mpl")
    os.mkdir(dest)
    try:
        import matplotlib
        for f in Path(matplotlib.get_cachedir()).glob("fontlist-*.json"):
            shutil.copy(f, dest)
    except Exception:  # noqa: BLE001 - matplotlib then builds its cache itself
        pass
    return dest
