"""The grading copy of `course`: an allowlist per group of questions, everything else a stub.

A student process imports `course` from a copy built per notebook and per group of its questions
(`groups`: questions that may use the same building blocks share one process). In the copy, every
top-level function, every method and every lambda outside a function raises "not available while
grading" -- except what the process needs, which is found, not listed by hand:

- what the task registry's import and the notebook's official setup cells call (their imports and
  `use_style()`), recorded by running them once in a traced interpreter (`needs.trace`);
- `run_case` and what each Task's `run` calls (how the student's functions are called);
- the building blocks the group's Tasks declare legal (`Task.may_use`), with all they call.

So another name, a reshaped view, special arguments, the course MLP or a numerical-gradient helper
computes nothing: they are stubs unless the question may use them. The task modules are replaced
too (`task_module_source`): each Task's `run` and no cases, mistakes or references. The installed
packages the sandbox sees are likewise only those that start imported, plus packages a Task names
(`site_view`); an installed `course` is covered by the copy. The copy is built once per run in a
private temp folder that the sandbox mounts read-only; the real package is never mounted.
"""

import ast
import atexit
import compileall
import functools
import glob
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import shutil
import sys
import tempfile
import textwrap
import threading
import types
from pathlib import Path

from course.grade.sandbox import needs

STUB = "raise RuntimeError({name!r} ' is not available while grading: write your own')"
HELPER = "__grading_stub__"
# Modules the student process runs as they are: the harness and its wire (no course math).
VERBATIM = {"course.grade", "course.grade.sandbox", "course.grade.sandbox.harness",
            "course.grade.sandbox.wire"}
PACKAGE = "course"

_copies, _sites, _lock, _locks = {}, {}, threading.Lock(), {}
_root = None


# ---- what a group may use ---------------------------------------------------------------------

def _resolve(entry):
    """A may_use entry as a function or class of `course`, or a package name (str)."""
    if isinstance(entry, str):
        if entry.split(".")[0] != PACKAGE:
            return entry
        module, _, name = entry.rpartition(".")
        return getattr(importlib.import_module(module), name)
    return entry


def allowance(task):
    """What a Task may use, as a hashable key: (module, name) of functions, package names."""
    out = set()
    for entry in getattr(task, "may_use", ()):
        value = _resolve(entry)
        out.add(value if isinstance(value, str) else
                (value.__module__, getattr(value, "__qualname__", repr(value))))
    return frozenset(out)


def groups(tasks, nb_id):
    """The notebook's auto-graded questions in groups that may use the same building blocks: each
    group is graded in processes (and a grading copy) of its own, so no question can reach what
    only another question may use (spatial BN's batchnorm_forward would make layer norm free)."""
    by_key = {}
    for (nb, gid), task in tasks.items():
        if nb == nb_id:
            by_key.setdefault(allowance(task), []).append(gid)
    return list(by_key.values())


def _in_course(value):
    return (getattr(value, "__module__", None) or "").split(".")[0] == PACKAGE


def _code_names(code):
    names, codes = set(), [code]
    while codes:
        c = codes.pop()
        names |= set(c.co_names)
        codes += [k for k in c.co_consts if isinstance(k, types.CodeType)]
    return names


def closure(roots):
    """{(module, unit)} of the roots and of everything of `course` they can call (by name, as a
    module attribute, through closures, defaults and class members), transitively."""
    seen, done, todo = set(), set(), list(roots)
    while todo:
        obj = todo.pop()
        if isinstance(obj, functools.partial):
            todo += [obj.func, *obj.args, *obj.keywords.values()]
            continue
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if isinstance(obj, property):
            todo += [f for f in (obj.fget, obj.fset, obj.fdel) if f is not None]
            continue
        if inspect.ismethod(obj):
            obj = obj.__func__
        wrapped = getattr(obj, "__wrapped__", None)
        if wrapped is not None and not isinstance(obj, type):
            todo.append(wrapped)
        if id(obj) in done or not _in_course(obj):
            continue
        done.add(id(obj))
        if isinstance(obj, type):
            todo += list(vars(obj).values()) + list(obj.__mro__[1:])
            continue
        if not isinstance(obj, types.FunctionType):
            continue
        seen.add((obj.__module__, needs.unit(obj.__qualname__, obj.__code__.co_firstlineno)))
        names = _code_names(obj.__code__)
        for name in names:
            value = obj.__globals__.get(name)
            if isinstance(value, types.ModuleType):
                if value.__name__.split(".")[0] == PACKAGE:
                    todo += [getattr(value, n) for n in names if hasattr(value, n)]
            elif value is not None:
                todo.append(value)
        for cell in obj.__closure__ or ():
            try:
                todo.append(cell.cell_contents)
            except ValueError:  # an empty cell
                pass
        todo += list(obj.__defaults__ or ()) + list((obj.__kwdefaults__ or {}).values())
    return seen


def _run_roots(task):
    """What a Task's `run` needs from other modules of `course` (its own module is regenerated)."""
    used = _closure(task.run, {task.run.__name__: task.run})
    return [v for v in used.values() if (isinstance(v, (types.FunctionType, type)))
            and _in_course(v) and v.__module__ != task.run.__module__]


def kept_units(tasks, group, called):
    """{(module, unit)} that stay working in the copy of one group of questions."""
    from course.tasks.base import run_case
    roots = [run_case]
    for task in group:
        roots += _run_roots(task)
        roots += [v for v in map(_resolve, getattr(task, "may_use", ())) if not isinstance(v, str)]
    return set(called) | closure(roots)


# ---- rewriting a module -----------------------------------------------------------------------

def _outer_lambdas(nodes):
    """Lambdas in these expressions or statements that are not inside another lambda or a def."""
    stack, found = list(nodes), []
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Lambda):
            found.append(node)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stack += list(ast.iter_child_nodes(node))
    return found


def stub_module(source, keep):
    """The module source with every function, method and outer lambda not in `keep` (units:
    `f`, `C.m`, `<lambda>:LINE`) reduced to a raise; defaults, decorators and classes stay."""
    tree = ast.parse(source)
    data = source.encode()
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    edits = []

    def at(line, col):
        return starts[line - 1] + col

    def lambdas(nodes):
        for lam in _outer_lambdas(nodes):
            if f"<lambda>:{lam.lineno}" not in keep:
                edits.append((at(lam.body.lineno, lam.body.col_offset),
                              at(lam.body.end_lineno, lam.body.end_col_offset),
                              f"{HELPER}('<lambda>')"))

    def walk(body, prefix):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + node.name
                if name in keep:
                    continue
                first = node.body[0]
                edits.append((at(first.lineno, first.col_offset),
                              at(node.end_lineno, node.end_col_offset), STUB.format(name=name)))
                lambdas(node.args.defaults + [d for d in node.args.kw_defaults if d])
            elif isinstance(node, ast.ClassDef):
                lambdas(node.bases + node.keywords + node.decorator_list)
                walk(node.body, prefix + node.name + ".")
            else:
                lambdas([node])

    walk(tree.body, "")
    for start, end, text in sorted(edits, reverse=True):
        data = data[:start] + text.encode() + data[end:]
    helper = (f"\n\ndef {HELPER}(name):\n"
              f"    raise RuntimeError(name + ' is not available while grading')\n")
    return data.decode() + (helper if edits else "")


# ---- the copy ---------------------------------------------------------------------------------

def _package_dir():
    spec = importlib.util.find_spec(PACKAGE)
    return Path(next(iter(spec.submodule_search_locations)))


def _ignore(src):
    """copytree's ignore: caches, and of course.grade only the harness and its wire."""
    grade, sandbox = src / "grade", src / "grade" / "sandbox"

    def ignore(folder, names):
        skip = {n for n in names if n == "__pycache__" or n.endswith(".pyc")
                or n == ".ipynb_checkpoints"}
        if Path(folder) == grade:
            skip |= set(names) - {"__init__.py", "sandbox"}
        elif Path(folder) == sandbox:
            skip |= set(names) - {"__init__.py", "harness.py", "wire.py"}
        return skip
    return ignore


def _module_of(path, top):
    rel = path.relative_to(top.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def build(tasks, nb_id, dest, questions=None, setup=(), registry="course.tasks", path=()):
    """Write the grading copy of one group of nb_id's questions under dest/course; returns dest."""
    questions = questions or [g for (nb, g) in tasks if nb == nb_id]
    group = [tasks[nb_id, g] for g in questions if (nb_id, g) in tasks]
    called, files = needs.trace(setup, registry, path)
    keep = kept_units(tasks, group, called)
    src = _package_dir()
    top = dest / PACKAGE
    shutil.copytree(src, top, ignore=_ignore(src))
    task_modules = {t.run.__module__ for t in tasks.values()}
    for py in sorted(top.rglob("*.py")):
        module = _module_of(py, top)
        if module in VERBATIM or module in task_modules:
            continue
        units = {u for m, u in keep if m == module}
        py.write_text(stub_module(py.read_text(), units))
    by_task_module = {}
    for task in tasks.values():
        by_task_module.setdefault(task.run.__module__, []).append(task)
    for module, module_tasks in by_task_module.items():
        if module.split(".")[0] == PACKAGE:
            target = dest.joinpath(*module.split(".")).with_suffix(".py")
            target.write_text(task_module_source(module_tasks))
    # Compiled once here: every student process imports the copy, read-only, from the .pyc.
    compileall.compile_dir(str(top), quiet=2, workers=1)
    packages = {v for t in group for v in map(_resolve, getattr(t, "may_use", ()))
                if isinstance(v, str)}
    _sites[str(dest)] = site_entries(files, packages)
    return dest


def _closure(fn, seen):
    """The module-level names fn uses (its own code and nested code), resolved in its globals."""
    for name in sorted(_code_names(fn.__code__) & set(fn.__globals__)):
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


def _new_root():
    global _root
    if _root is None:
        _root = Path(tempfile.mkdtemp(prefix="course-grade-copies-"))
    return _root


def grading_copy(tasks, nb_id, plan=None):
    """The folder holding the grading copy for a plan's questions of nb_id (built on first use in
    this run; a plan's questions should be one of `groups`, else the copy keeps their union)."""
    questions = tuple(plan.questions) if plan is not None else \
        tuple(g for (nb, g) in tasks if nb == nb_id)
    registry = plan.registry if plan is not None else "course.tasks"
    path = tuple(plan.path) if plan is not None else ()
    key = (nb_id, questions, registry, path)
    with _lock:
        if key in _copies:
            return _copies[key]
        lock = _locks.setdefault(key, threading.Lock())
    with lock:  # other notebooks' copies are built meanwhile
        with _lock:
            if key in _copies:
                return _copies[key]
            dest = _new_root() / f"copy{len(_locks)}-{abs(hash(key)) % 10**8}"
            dest.mkdir()
        setup = plan.setup if plan is not None else ()
        built = build(tasks, nb_id, dest, list(questions), setup, registry, path)
        with _lock:
            _copies[key] = built
        return built


# ---- the installed packages a sandbox sees ------------------------------------------------------

def site_dirs():
    """Every folder of installed Python packages under the folders a sandbox mounts."""
    roots = set(python_paths()) | {"/usr", "/usr/local"}
    patterns = ("lib/python3*/site-packages", "lib/python3*/dist-packages",
                "lib/python3/dist-packages", "local/lib/python3*/dist-packages",
                "local/lib/python3*/site-packages", "lib64/python3*/site-packages")
    found = {os.path.realpath(p) for r in roots for pat in patterns
             for p in glob.glob(os.path.join(r, pat)) if os.path.isdir(p)}
    found |= {os.path.realpath(p) for p in sys.path
              if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)}
    return sorted(found)


@functools.cache
def _owners(site):
    """{top-level entry: every top-level entry of the distributions that installed it} in site,
    read from each distribution's RECORD (once per run: reading them is the slow part)."""
    out = {}
    for dist in importlib.metadata.distributions(path=[site]):
        record = dist.read_text("RECORD") or dist.read_text("top_level.txt") or ""
        tops = {line.split(",", 1)[0].split("/", 1)[0] for line in record.splitlines()}
        tops = {t for t in tops if t and not t.startswith("..")}
        for t in tops:
            out.setdefault(t, set()).update(tops)
    return out


def site_entries(files, packages=()):
    """{site dir: entries a sandbox may see}: the packages these module files came from, the
    named packages, and what their distributions installed beside them (.libs, .dist-info);
    never the course package itself (the copy stands in for it)."""
    entries = {}
    for site in site_dirs():
        owners = _owners(site)
        own = owners.get(PACKAGE, set()) | {PACKAGE}
        found = {Path(os.path.relpath(f, site)).parts[0] for f in files
                 if f.startswith(site + os.sep)}
        found |= {p for p in packages if os.path.exists(os.path.join(site, p))}
        allowed = set()
        for e in found:
            allowed |= owners.get(e, set()) | {e}
        allowed = {e for e in allowed - own if not e.endswith(".pth")
                   and not e.startswith("__editable__") and e != "__pycache__"}
        entries[site] = sorted(allowed & set(os.listdir(site)))
    return entries


def site_view(copy):
    """bwrap arguments after the system binds: each site folder an empty read-only tmpfs but for
    the entries this copy allows, and an installed `course` replaced by the copy."""
    allowed = _sites.get(str(copy), {})
    args = []
    for site in site_dirs():
        args += ["--tmpfs", site]
        for entry in allowed.get(site, ()):
            args += ["--ro-bind", os.path.join(site, entry), os.path.join(site, entry)]
        if os.path.isdir(os.path.join(site, PACKAGE)) and (Path(copy) / PACKAGE).is_dir():
            args += ["--ro-bind", str(Path(copy) / PACKAGE), os.path.join(site, PACKAGE)]
        args += ["--remount-ro", site]
    return args


# ---- run-wide folders ---------------------------------------------------------------------------

def mpl_cache():
    """A folder holding a copy of matplotlib's font cache (so no sandbox rebuilds it), or None."""
    with _lock:
        dest = _new_root() / "mpl"
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
        _sites.clear()
        _locks.clear()
    needs.stop()


atexit.register(remove_all)  # also when the grader ends without calling launch.shutdown


def python_paths():
    """Folders the interpreter needs: its prefix (stdlib) and the environment's (site-packages)."""
    return sorted({sys.base_prefix, sys.prefix, sys.exec_prefix, sys.base_exec_prefix})
