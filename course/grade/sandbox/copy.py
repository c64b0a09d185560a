"""The grading copy of `course`: the package as it is, minus the graded functions of one notebook.

Grading notebook 02 imports a copy in which `course.batchnorm.batchnorm_forward` (the reference
of 02's task) is a stub that raises; other notebooks' functions stay, since reusing them is legal
(spatial BN may call `batchnorm_forward`). The copy is built once per notebook per grading run in
a private temp folder that the sandbox mounts read-only; the real package is never mounted.

The task modules keep their planted mistakes working (tests plant them by calling them inside
the student process), so they import the untouched modules from `course._originals`, and their
Task objects get the stubs as `reference`. A mistake's code therefore still reaches the real
function through its globals: that residual path is documented, and answers importing `course`
are flagged for review.
"""

import ast
import atexit
import importlib.util
import shutil
import sys
import tempfile
import threading
from pathlib import Path

STUB = "raise RuntimeError({name!r} ' is not available while grading: write your own')"
ORIGINALS = "_originals"
TRAILER = """

# --- grading copy: the tasks keep their planted mistakes but not their references ---
def _grading_stubs(_tasks):
    import dataclasses as _dc
    import importlib as _il
    def _stub(f):
        module = getattr(f, "__module__", "") or ""
        if module.startswith("course.{originals}."):
            return getattr(_il.import_module("course." + module.split(".", 2)[2]), f.__name__)
        return f
    return [_dc.replace(t, reference=tuple(_stub(f) for f in t.reference)) for t in _tasks]


TASKS = _grading_stubs(TASKS)
for _name, _value in list(globals().items()):
    if isinstance(_value, Task):
        globals()[_name] = next(t for t in TASKS if t.grade_id == _value.grade_id)
del _grading_stubs
""".replace("{originals}", ORIGINALS)
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
        original = dest / "course" / ORIGINALS / path.relative_to(dest / "course")
        original.parent.mkdir(parents=True, exist_ok=True)
        for folder in [original.parent, *original.parent.parents]:
            if folder == dest / "course":
                break
            (folder / "__init__.py").touch()
        shutil.copy(path, original)
        path.write_text(stub_source(path.read_text(), names))
    stubbed = {m for m in by_module if m.split(".")[0] == "course"}
    for path in (dest / "course" / "tasks").glob("*.py"):
        path.write_text(redirect_imports(path.read_text(), stubbed))
    return dest


def redirect_imports(source, stubbed):
    """A task module importing stubbed modules from their originals, its Tasks without them."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    edits = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module in stubbed and node.level == 0:
            new = ast.ImportFrom(module="course." + ORIGINALS + node.module[len("course"):],
                                 names=node.names, level=0)
            edits.append((node.lineno - 1, node.end_lineno, ast.unparse(new) + "\n"))
    if not edits:
        return source
    for start, end, text in sorted(edits, reverse=True):
        lines[start:end] = [text]
    return "".join(lines) + (TRAILER if any(isinstance(n, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "TASKS" for t in n.targets) for n in tree.body)
        else "")


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
