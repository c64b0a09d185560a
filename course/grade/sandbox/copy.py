"""The grading copy of `course`: the package as it is, minus the graded functions of one notebook.

Grading notebook 02 imports a copy in which `course.batchnorm.batchnorm_forward` (the reference
of 02's task) is a stub that raises; other notebooks' functions stay, since reusing them is legal
(spatial BN may call `batchnorm_forward`). The copy is built once per notebook per grading run in
a private temp folder that the sandbox mounts read-only; the real package is never mounted.

The task modules are replaced too (`task_module_source`): the student process only needs each
Task's `run` (how to call the student's functions on one case's inputs), so the copy's task modules
hold that and nothing else: no cases, no planted mistakes (near-correct implementations a student
could assemble), no references (named stubs). Cases are made in the grader and sent as data.
"""

import ast
import atexit
import importlib.util
import inspect
import shutil
import sys
import tempfile
import textwrap
import threading
import types
from pathlib import Path

STUB = "raise RuntimeError({name!r} ' is not available while grading: write your own')"
_copies, _lock = {}, threading.Lock()
_root = None


def graded_functions(tasks, nb_id):
    """(module, name) of every reference of the notebook's tasks, top-level functions only."""
    out = set()
    for task in tasks.values():
        if task.notebook != nb_id:
            continue
        for f in task.reference:
            module, name = getattr(f, "__module__", None), getattr(f, "__qualname__", "")
            if module and name.isidentifier():
                out.add((module, name))
    return out


def stub_source(source, names):
    """The module source with the bodies of the named top-level functions replaced by a raise."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            first = node.body[0]
            indent = " " * first.col_offset
            edits.append((first.lineno - 1, node.end_lineno,
                          indent + STUB.format(name=node.name) + "\n"))
    for start, end, text in sorted(edits, reverse=True):
        lines[start:end] = [text]
    return "".join(lines)


def _package_dir():
    spec = importlib.util.find_spec("course")
    return Path(next(iter(spec.submodule_search_locations)))


def build(tasks, nb_id, dest):
    """Write the grading copy for nb_id under dest/course; returns dest."""
    src = _package_dir()
    shutil.copytree(src, dest / "course",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
    by_module = {}
    for module, name in graded_functions(tasks, nb_id):
        by_module.setdefault(module, set()).add(name)
    for module, names in by_module.items():
        if module.split(".")[0] != "course":
            continue  # a test registry outside the package: nothing to hide
        parts = module.split(".")
        path = dest.joinpath(*parts).with_suffix(".py")
        if not path.exists():
            path = dest.joinpath(*parts, "__init__.py")
        path.write_text(stub_source(path.read_text(), names))
    by_task_module = {}
    for task in tasks.values():
        by_task_module.setdefault(task.run.__module__, []).append(task)
    for module, module_tasks in by_task_module.items():
        if module.split(".")[0] == "course":
            path = dest.joinpath(*module.split(".")).with_suffix(".py")
            path.write_text(task_module_source(module_tasks))
    return dest


def _closure(fn, seen):
    """The module-level names fn uses (its own code and nested code), resolved in its globals."""
    codes, names = [fn.__code__], set()
    while codes:
        code = codes.pop()
        names |= set(code.co_names)
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    for name in sorted(names & set(fn.__globals__)):
        value = fn.__globals__[name]
        if name not in seen:
            seen[name] = value
            if isinstance(value, types.FunctionType) and value.__module__ == fn.__module__:
                _closure(value, seen)
    return seen


def task_module_source(module_tasks):
    """Source of a task module for the student process: each Task's run function and what it
    calls, Tasks with named stub references, no cases and no mistakes."""
    used = {}
    for task in module_tasks:
        used[task.run.__name__] = task.run
        _closure(task.run, used)
    head, defs = ["from course.tasks.base import Task", "", "", "def _no_cases(rng):",
                  "    return []", "", "", "def _stub(name):",
                  "    def stub(*args, **kwargs):",
                  "        raise RuntimeError(name + ' is not available while grading')",
                  "    stub.__name__ = stub.__qualname__ = name", "    return stub"], []
    home = module_tasks[0].run.__module__
    for name, value in used.items():
        if isinstance(value, types.ModuleType):
            head.insert(0, f"import {value.__name__} as {name}")
        elif isinstance(value, types.FunctionType) and value.__module__ == home:
            defs.append(textwrap.dedent(inspect.getsource(value)))
        elif isinstance(value, (int, float, str, tuple, bool)) or value is None:
            head.append(f"{name} = {value!r}")
        else:
            head.append(f"from {value.__module__} import {value.__name__} as {name}")
    specs = [f"    Task(notebook={t.notebook!r}, points={t.points!r}, checks={t.checks!r},\n"
             f"         reference=({', '.join(f'_stub({n!r})' for n in t.functions)},),\n"
             f"         make_cases=_no_cases, run={t.run.__name__}, mutable={t.mutable!r},\n"
             f"         rtol={t.rtol!r}, atol={t.atol!r})," for t in module_tasks]
    return ('"""Grading copy: what the student process needs of these tasks (generated)."""\n\n'
            + "\n".join(head) + "\n\n\n" + "\n\n".join(defs) + "\n\nTASKS = [\n"
            + "\n".join(specs) + "\n]\n")


def grading_copy(tasks, nb_id):
    """The folder holding nb_id's grading copy of `course` (built on first use in this run)."""
    global _root
    with _lock:
        if nb_id not in _copies:
            if _root is None:
                _root = Path(tempfile.mkdtemp(prefix="course-grade-copies-"))
            dest = _root / (nb_id if nb_id.replace("_", "").isalnum() else f"nb{len(_copies)}")
            dest.mkdir()
            _copies[nb_id] = build(tasks, nb_id, dest)
        return _copies[nb_id]


def mpl_cache():
    """A folder holding a copy of matplotlib's font cache (so no sandbox rebuilds it), or None."""
    global _root
    with _lock:
        if _root is None:
            _root = Path(tempfile.mkdtemp(prefix="course-grade-copies-"))
        dest = _root / "mpl"
        if not dest.exists():
            dest.mkdir()
            try:
                import matplotlib
                for f in Path(matplotlib.get_cachedir()).glob("fontlist-*.json"):
                    shutil.copy(f, dest / f.name)
            except Exception:  # noqa: BLE001 - matplotlib then builds its cache itself
                pass
        return dest


def remove_all():
    """Delete every grading copy of this run."""
    global _root
    with _lock:
        if _root is not None:
            shutil.rmtree(_root, ignore_errors=True)
        _root = None
        _copies.clear()


atexit.register(remove_all)  # also when the grader ends without calling launch.shutdown


def python_paths():
    """Folders the interpreter needs: its prefix (stdlib) and the environment's (site-packages)."""
    return sorted({sys.base_prefix, sys.prefix, sys.exec_prefix, sys.base_exec_prefix})
