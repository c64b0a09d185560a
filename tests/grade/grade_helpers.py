"""Helpers for the grader's tests: run the CLI, build submissions from the solution notebooks.

Everything is derived from whatever solutions/ and the task registry hold, so new notebooks and
exercises are covered without changes here.
"""

import ast
import copy
import csv
import inspect
import os
import subprocess
import sys
import uuid

import nbformat

from course import notebook as nbtools
from course.grade.questions import Course
from course.grade.sandbox.copy import closure
from course.release import student_version

PY = sys.executable


LIMITS = ["--timeout", "5", "--total-timeout", "60", "--memory", "256", "--output-limit", "64"]


COURSE = Course()


SOURCES = {nb_id: nb for nb_id, nb in COURSE.sources.items()
           if any(not q.manual for q in COURSE.questions_of(nb_id))}
# An assertion, not a skip: a regression that emptied SOURCES must fail every grader test
# module at collection, not skip them. The two-notebook tests need two.
assert len(SOURCES) >= 2, f"the grader tests need two auto-graded notebooks: {[*SOURCES]}"


def auto(nb_id):
    return [q for q in COURSE.questions_of(nb_id) if not q.manual]


def grade(out, *targets, extra=(), env=None):
    """Run the grader CLI as an instructor would; return the CSV rows by student."""
    cmd = [PY, "-m", "course.grade", *map(str, targets), "--out", str(out), "--jobs", "2",
           *LIMITS, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env=None if env is None else {**os.environ, **env})
    assert proc.returncode == 0, proc.stderr
    with open(out / "grades.csv", newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}, proc


def answer_index(nb, gid):
    return next(i for i, c in enumerate(nb.cells) if nbtools.grade_id(c) == gid)


def with_answer(nb, gid, source):
    """A copy of the notebook whose answer cell `gid` holds `source`."""
    nb = copy.deepcopy(nb)
    nb.cells[answer_index(nb, gid)].source = source
    return nb


def stub_functions(functions, body):
    """Source defining every graded function with the same (bad) body."""
    lines = ["import os, subprocess, sys", "import numpy as np", ""]
    for name in functions:
        lines += [f"def {name}(*args, **kwargs):"] + ["    " + b for b in body.splitlines()]
    return "\n".join(lines) + "\n"


def _in_import_order(modules):
    """Module names ordered so that each comes after the ones among them it imports from."""
    deps = {m: {n.module for n in ast.walk(ast.parse(inspect.getsource(sys.modules[m])))
                if isinstance(n, ast.ImportFrom) and n.module in modules and n.module != m}
            for m in modules}
    order = []
    while deps:
        ready = sorted(m for m, d in deps.items() if not d - set(order))
        order += ready or sorted(deps)  # a cycle: any order (never in this course)
        deps = {m: d for m, d in deps.items() if m not in order}
    return order


def mistake_source(q, k):
    """The k-th known mistake of a task, as answer-cell source calling the mistake's code.

    The grading copy's task modules hold no mistakes and its course functions are stubs, so the
    cell carries the task module's source and the real source of every course module the mistake
    calls into, runs those as modules of their own while the task module is imported, then puts
    the copy's modules back: only this answer's functions see the real code."""
    task_obj = COURSE.tasks[q.notebook, q.grade_id]
    module = sys.modules[task_obj.run.__module__]
    needed = {mod for mod, _ in closure(task_obj.mistakes[k].impl) if mod != module.__name__}
    sources = [(m, inspect.getsource(sys.modules[m])) for m in _in_import_order(needed)]
    task = f"_task_{q.grade_id}"  # one name per answer cell: a notebook may have several
    lines = ["import sys as _sys, types as _types",
             f"_saved = {{_m: _sys.modules.get(_m) for _m in {sorted(needed)!r}}}",
             "try:",
             f"    for _name, _src in {sources!r}:",
             "        _sys.modules[_name] = _mod = _types.ModuleType(_name)",
             "        exec(compile(_src, _name, 'exec'), _mod.__dict__)",
             "    _ns = {'__name__': 'planted_mistakes'}",
             f"    exec(compile({inspect.getsource(module)!r}, 'planted_mistakes', 'exec'), _ns)",
             "finally:",
             "    for _name, _old in _saved.items():",
             "        _sys.modules.pop(_name, None) if _old is None else "
             "_sys.modules.__setitem__(_name, _old)",
             f"{task} = next(t for t in _ns['TASKS'] if t.grade_id == {q.grade_id!r})", ""]
    for j, name in enumerate(q.functions):
        lines += [f"def {name}(*args, **kwargs):",
                  f"    return {task}.mistakes[{k}].impl[{j}](*args, **kwargs)"]
    return "\n".join(lines) + "\n"


def fresh(cell):
    """A copy of a cell with a new cell id (nbformat wants ids unique)."""
    cell = copy.deepcopy(cell)
    cell["id"] = uuid.uuid4().hex[:8]
    return cell


def write(path, nb):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def points(row, q):
    return float(row[q.column])


ZOO_NB = max(sorted(SOURCES), key=lambda n: len(auto(n)))


MARK = uuid.uuid4().hex[:8]


def _zoo(tmp):
    """{student: notebook or raw text} for every kind of bad submission."""
    sol = SOURCES[ZOO_NB]
    victim = auto(ZOO_NB)[0]
    gid, fns = victim.grade_id, victim.functions
    sol_src = sol.cells[answer_index(sol, gid)].source
    student = student_version(sol, ZOO_NB)
    outside = tmp / f"outside_{MARK}.txt"
    zoo = {
        "full": sol,
        "untouched": student,
        "infinite_loop": with_answer(sol, gid, stub_functions(fns, "while True:\n    pass")),
        "os_exit": with_answer(sol, gid, stub_functions(fns, "os._exit(3)")),
        "sys_exit": with_answer(sol, gid, stub_functions(fns, "sys.exit(1)")),
        "sys_exit_cell": with_answer(sol, gid, "import sys\nsys.exit(0)\n" + sol_src),
        "loop_cell": with_answer(sol, gid, "while True:\n    pass\n" + sol_src),
        "memory_bomb": with_answer(sol, gid, stub_functions(
            fns, "hog = []\nwhile True:\n    hog.append(np.ones(2**20))")),
        "print_flood": with_answer(sol, gid, stub_functions(
            fns, "while True:\n    print('spam ' * 200)")),
        "cheat": with_answer(sol, gid, (
            "import numpy, numpy.testing, course, course.tasks, course.tasks.base\n"
            "numpy.allclose = lambda *a, **k: True\n"
            "numpy.array_equal = lambda *a, **k: True\n"
            "course.tasks.base.evaluate = lambda *a, **k: None\n"
            "for _t in course.tasks.all_tasks().values():\n"
            "    object.__setattr__(_t, 'reference', tuple(_t.reference))\n"
            "    object.__setattr__(_t, 'rtol', 1e9)\n"
            "    for _f in _t.reference:\n"
            "        setattr(sys.modules[_f.__module__], _f.__name__, lambda *a, **k: None)\n"
            + stub_functions(fns, "return None"))),
        "write_outside": with_answer(sol, gid, (
            "import os\n"
            f"for _p in ['../escape_{MARK}.txt', '../../escape_{MARK}.txt',\n"
            f"           os.path.expanduser('~/escape_{MARK}.txt'), {str(outside)!r}]:\n"
            "    try:\n"
            "        open(_p, 'w').write('pwned')\n"
            "    except OSError:\n"
            "        pass\n" + sol_src)),
        "leftover_child": with_answer(sol, gid, (
            "import subprocess\n"
            f"subprocess.Popen(['sleep', '{3000 + int(MARK, 16) % 997}'])\n"
            f"subprocess.Popen(['setsid', 'sleep', '{4000 + int(MARK, 16) % 997}'])\n"
            + sol_src)),
        "noisy": with_answer(sol, gid, sol_src + "\nimport sys, warnings\n" + "".join(
            f"_orig_{f} = {f}\n"
            f"def {f}(*args, **kwargs):\n"
            f"    warnings.warn('a warning never costs points')\n"
            f"    print('stderr never costs points', file=sys.stderr)\n"
            f"    return _orig_{f}(*args, **kwargs)\n" for f in fns)
            + "warnings.warn('cell-level warning')\n"),
        "kill_zygote": with_answer(sol, gid, stub_functions(
            fns, "import signal\nos.kill(os.getppid(), signal.SIGKILL)\nos._exit(4)")),
        "forge_channel": with_answer(sol, gid, stub_functions(fns, (
            "for fd in range(3, 256):  # scribble on every descriptor it can find\n"
            "    try:\n"
            "        os.write(fd, b'\\xff' * 64)\n"
            "    except OSError:\n"
            "        pass\n"
            "return None"))),
        "malformed": "{ this is not json",
        "empty": "",
    }
    deleted = copy.deepcopy(sol)
    del deleted.cells[answer_index(sol, gid)]
    zoo["deleted_cell"] = deleted
    dup = copy.deepcopy(sol)
    dup.cells.insert(answer_index(sol, gid) + 1,
                     fresh(student.cells[answer_index(student, gid)]))
    zoo["duplicated_stub_last"] = dup
    dup2 = copy.deepcopy(sol)  # a stub copy above the solved cell
    dup2.cells.insert(answer_index(sol, gid), fresh(student.cells[answer_index(student, gid)]))
    zoo["duplicated_solution_last"] = dup2
    moved = copy.deepcopy(student)  # the solution moved to the end, ids lost, extra code around
    cell = copy.deepcopy(sol.cells[answer_index(sol, gid)])
    cell.metadata = {}
    cell.source += "\nimport os\nos._exit(9)  # top-level code of a moved cell must not run\n"
    del moved.cells[answer_index(moved, gid)]
    moved.cells.append(cell)
    for q in auto(ZOO_NB)[1:]:  # the other answers stay solved
        moved.cells[answer_index(moved, q.grade_id)] = sol.cells[answer_index(sol, q.grade_id)]
    zoo["moved_cell"] = moved
    zoo["renamed"] = sol
    anon = copy.deepcopy(sol)
    anon.metadata.pop("course", None)
    zoo["renamed_no_metadata"] = anon
    return zoo, outside


def full_marks(row, skip=()):
    return all(points(row, q) == q.points for q in auto(ZOO_NB) if q.grade_id not in skip)


def graded_questions():
    return [q for nb_id in SOURCES for q in auto(nb_id)]
