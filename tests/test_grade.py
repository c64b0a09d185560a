"""The autograder against a zoo of bad submissions generated from the solution notebooks.

Everything is derived from whatever solutions/ and the task registry hold, so new notebooks and
exercises are covered without changes here. Two batches run once per session: the zoo (every
kind of broken submission, built from the notebook with the most auto-graded tasks) and the
course-wide batch (full marks, untouched student notebooks, every planted mistake).
"""

import copy
import csv
import os
import subprocess
import sys
import uuid
from pathlib import Path

import nbformat
import pytest

from course import notebook as nbtools
from course.grade.questions import Course
from course.grade.sandbox.bwrap import probe as _sandbox_problem
from course.release import student_version

PY = sys.executable
LIMITS = ["--timeout", "5", "--total-timeout", "60", "--memory", "256", "--output-limit", "64"]
COURSE = Course()
SOURCES = {nb_id: nb for nb_id, nb in COURSE.sources.items()
           if any(not q.manual for q in COURSE.questions_of(nb_id))}
pytestmark = pytest.mark.skipif(not SOURCES, reason="no solution notebook with graded tasks yet")


def auto(nb_id):
    return [q for q in COURSE.questions_of(nb_id) if not q.manual]


def grade(out, *targets, extra=()):
    """Run the grader CLI as an instructor would; return the CSV rows by student."""
    cmd = [PY, "-m", "course.grade", *map(str, targets), "--out", str(out), "--jobs", "2",
           *LIMITS, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
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


def mistake_source(q, k):
    """The k-th known mistake of a task, as answer-cell source calling the mistake's code."""
    lines = ["from course.tasks import get as _get_task", ""]
    for j, name in enumerate(q.functions):
        lines += [f"def {name}(*args, **kwargs):",
                  f"    return _get_task({q.grade_id!r}, {q.notebook!r}).mistakes[{k}].impl[{j}]"
                  "(*args, **kwargs)"]
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


# ---------------------------------------------------------------- the zoo (one batch) --------

ZOO_NB = max(sorted(SOURCES), key=lambda n: len(auto(n))) if SOURCES else None
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


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zoo")
    members, outside = _zoo(tmp)
    subs = tmp / "submissions"
    subs.mkdir()
    targets = []
    for name, nb in members.items():
        path = subs / f"{name}.ipynb"  # never the notebook's own name: found by metadata
        if isinstance(nb, str):
            path.write_text(nb)
        else:
            write(path, nb)
        targets.append(path)
    folder = subs / "folder_student"  # a folder whose file name says nothing
    write(folder / "my_copy.ipynb", members["full"])
    targets.append(folder)
    out = tmp / "out"
    rows, proc = grade(out, *targets, extra=["--notebooks", ZOO_NB])
    return {"rows": rows, "out": out, "outside": outside, "proc": proc, "tmp": tmp,
            "size": len(targets)}


def full_marks(row, skip=()):
    return all(points(row, q) == q.points for q in auto(ZOO_NB) if q.grade_id not in skip)


def test_batch_mixing_everything_completes(zoo):
    rows = zoo["rows"]
    assert len(rows) == zoo["size"], sorted(rows)
    assert f"graded {zoo['size']} students" in zoo["proc"].stderr


def test_solution_gets_full_marks(zoo):
    for name in ("full", "renamed", "renamed_no_metadata", "folder_student", "moved_cell",
                 "duplicated_solution_last", "noisy"):
        row = zoo["rows"][name]
        assert row["status"] == "ok", (name, row["status"])
        assert full_marks(row), (name, row)
        assert float(row["total"]) == float(row["max_total"]) > 0


def test_untouched_student_notebook_scores_zero_with_status_ok(zoo):
    row = zoo["rows"]["untouched"]
    assert row["status"] == "ok"
    assert float(row["total"]) == 0 and float(row["max_total"]) > 0
    text = (zoo["out"] / "feedback" / "untouched.md").read_text()
    assert "not implemented yet" in text


@pytest.mark.parametrize("name, status", [
    ("infinite_loop", "timeout in {fns}"),
    ("os_exit", "kernel died (exit code 3) in {fns}"),
    ("sys_exit", "sys.exit in {fns}"),
    ("sys_exit_cell", "sys.exit in answer cell {gid}"),
    ("loop_cell", "timeout in answer cell {gid}"),
    ("memory_bomb", "memory limit in {fns}"),
    ("print_flood", "output limit in {fns}"),
    ("kill_zygote", "kernel died in {fns}"),
    ("forge_channel", "kernel died (malformed result) in {fns}"),
])
def test_failure_has_clear_status_and_the_rest_is_graded(zoo, name, status):
    victim = auto(ZOO_NB)[0]
    row = zoo["rows"][name]
    assert row["status"] == status.format(fns=", ".join(victim.functions), gid=victim.grade_id)
    assert points(row, victim) == 0
    assert full_marks(row, skip={victim.grade_id})


def test_broken_files_are_not_notebooks(zoo):
    for name in ("malformed", "empty"):
        row = zoo["rows"][name]
        assert row["status"] == "not a notebook"
        assert float(row["total"]) == 0


def test_deleted_or_stub_last_answer_costs_only_that_question(zoo):
    victim = auto(ZOO_NB)[0]
    for name in ("deleted_cell", "duplicated_stub_last"):
        row = zoo["rows"][name]
        assert row["status"] == "ok"
        assert points(row, victim) == 0
        assert full_marks(row, skip={victim.grade_id})


def test_cheating_inside_the_student_process_gains_nothing(zoo):
    victim = auto(ZOO_NB)[0]
    row = zoo["rows"]["cheat"]
    assert points(row, victim) == 0
    assert full_marks(row, skip={victim.grade_id})
    assert "review" in (zoo["out"] / "feedback" / "cheat.md").read_text()


def test_writes_outside_the_scratch_folder_do_not_land(zoo):
    row = zoo["rows"]["write_outside"]
    assert row["status"] == "ok" and full_marks(row)
    assert sorted(p.name for p in zoo["out"].iterdir()) == [".secret", "feedback", "grades.csv"]
    assert not list(Path.cwd().glob(f"*escape_{MARK}*"))
    assert not list(zoo["tmp"].rglob(f"*escape_{MARK}*"))
    if _sandbox_problem() is None:  # in the sandbox even an absolute path is refused
        assert not zoo["outside"].exists()


def test_leftover_child_processes_are_killed(zoo):
    row = zoo["rows"]["leftover_child"]
    assert row["status"] == "ok" and full_marks(row)
    psutil = pytest.importorskip("psutil")
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                 if p.info["cmdline"] and p.info["cmdline"][-1] in
                 {str(3000 + int(MARK, 16) % 997), str(4000 + int(MARK, 16) % 997)}]
    assert not leftovers


def test_feedback_never_shows_hidden_inputs_and_names_statuses(zoo):
    text = (zoo["out"] / "feedback" / "infinite_loop.md").read_text()
    assert "timeout in" in text
    assert "array(" not in text and "[[" not in text
    manual = [q for q in COURSE.questions_of(ZOO_NB) if q.manual]
    for q in manual:
        assert f"{q.grade_id}: graded by hand" in (zoo["out"] / "feedback" / "full.md").read_text()
        assert zoo["rows"]["full"][q.column] == ""


def test_spawn_mode_grades_like_fork_mode(zoo, tmp_path):
    subs = zoo["tmp"] / "submissions"
    names = ["full", "os_exit", "print_flood", "memory_bomb", "write_outside"]
    rows, _ = grade(tmp_path / "out", *(subs / f"{n}.ipynb" for n in names),
                    extra=["--no-fork", "--notebooks", ZOO_NB])
    for name in names:
        assert {k: v for k, v in rows[name].items()} == zoo["rows"][name], name


def test_resume_skips_students_already_graded(zoo, tmp_path):
    out = tmp_path / "out"
    subs = zoo["tmp"] / "submissions"
    grade(out, subs / "full.ipynb", extra=["--notebooks", ZOO_NB])
    rows, proc = grade(out, subs / "full.ipynb", subs / "untouched.ipynb",
                       extra=["--resume", "--notebooks", ZOO_NB])
    assert sorted(rows) == ["full", "untouched"]
    assert "graded 1 students" in proc.stderr and "1 skipped" in proc.stderr


# ------------------------------------------------- the whole course (one batch) -----------------

@pytest.fixture(scope="module")
def course_batch(tmp_path_factory):
    """Full marks, untouched, and every planted mistake k (the k-th mistake of every task)."""
    tmp = tmp_path_factory.mktemp("course")
    folders = {"solution": {}, "untouched": {}}
    planted = {}
    deepest = max(len(COURSE.tasks[q.notebook, q.grade_id].mistakes) for q in graded_questions())
    for nb_id, sol in SOURCES.items():
        folders["solution"][nb_id] = sol
        folders["untouched"][nb_id] = student_version(sol, nb_id)
        for k in range(deepest):
            nb = sol
            for q in auto(nb_id):
                if k < len(COURSE.tasks[q.notebook, q.grade_id].mistakes):
                    nb = with_answer(nb, q.grade_id, mistake_source(q, k))
                    planted.setdefault(f"mistake_{k}", {})[q.column] = \
                        COURSE.tasks[q.notebook, q.grade_id].mistakes[k].name
            folders.setdefault(f"mistake_{k}", {})[nb_id] = nb
    targets = []
    for student, notebooks in folders.items():
        for nb_id, nb in notebooks.items():
            write(tmp / "subs" / student / f"{nb_id}.ipynb", nb)
        targets.append(tmp / "subs" / student)
    rows, _ = grade(tmp / "out", *targets,
                    extra=["--timeout", "30", "--notebooks", ",".join(SOURCES)])
    return rows, planted, tmp / "out"


def graded_questions():
    return [q for nb_id in SOURCES for q in auto(nb_id)]


def test_every_solution_gets_full_marks(course_batch):
    rows, _, _ = course_batch
    row = rows["solution"]
    assert row["status"] == "ok"
    for q in graded_questions():
        assert points(row, q) == q.points, q.column


def test_every_untouched_student_notebook_scores_zero(course_batch):
    rows, _, _ = course_batch
    row = rows["untouched"]
    assert row["status"] == "ok"
    assert all(points(row, q) == 0 for q in graded_questions())


def test_each_planted_mistake_costs_exactly_its_question_and_is_named(course_batch):
    rows, planted, out = course_batch
    assert planted, "no task declares a mistake"
    for student, mistakes in planted.items():
        row = rows[student]
        assert row["status"] == "ok", (student, row["status"])
        text = (out / "feedback" / f"{student}.md").read_text()
        for q in graded_questions():
            if q.column in mistakes:
                assert points(row, q) < q.points, (student, q.column)
                message = next(m.message for m in COURSE.tasks[q.notebook, q.grade_id].mistakes
                               if m.name == mistakes[q.column])
                assert message in text, (student, q.column, mistakes[q.column])
            else:
                assert points(row, q) == q.points, (student, q.column)


# ------------------------------------------------------------------ small pieces -------------

def test_list_shows_every_question_with_kind():
    proc = subprocess.run([PY, "-m", "course.grade", "--list"], capture_output=True, text=True,
                          check=True)
    for q in COURSE.questions:
        line = next(ln for ln in proc.stdout.splitlines()
                    if f" {q.grade_id} " in f" {ln} " and q.notebook in ln)
        assert q.notebook in line and ("by hand" if q.manual else "auto") in line
        assert all(f in line for f in q.functions)


def test_student_sees_a_score_table(tmp_path):
    nb_id = ZOO_NB
    path = write(tmp_path / f"{nb_id}.ipynb", student_version(SOURCES[nb_id], nb_id))
    proc = subprocess.run([PY, "-m", "course.grade", str(path), *LIMITS], capture_output=True,
                          text=True, check=True)
    assert "total (auto-graded)" in proc.stdout and "not implemented yet" in proc.stdout
    assert not (tmp_path / "grades.csv").exists()


def test_results_channel_refuses_pickles():
    import io
    import pickle

    import numpy as np

    from course.grade.sandbox import wire
    buf = io.BytesIO()
    np.savez(buf, evil=np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError):
        wire.decode_arrays(buf.getvalue())
    r, w = os.pipe()
    os.write(w, wire._LEN.pack(len(pickle.dumps({}))) + pickle.dumps({}))
    os.close(w)
    reader = wire.Reader(r)
    reader.feed()
    with pytest.raises(ValueError):
        reader.message()
    os.close(r)


def test_hidden_seeds_are_secret_dependent_and_never_public():
    from course.grade.grading import hidden_seed
    from course.tasks.base import PUBLIC_SEED
    seeds = {hidden_seed(s, q.column) for s in ("a", "b") for q in graded_questions()}
    assert len(seeds) == 2 * len(graded_questions()) and PUBLIC_SEED not in seeds


def test_fallback_runs_only_definitions_of_a_moved_cell():
    from course.grade.submission import extract
    q = auto(ZOO_NB)[0]
    nb = copy.deepcopy(SOURCES[ZOO_NB])
    i = answer_index(nb, q.grade_id)
    moved = nbformat.v4.new_code_cell(
        "%timeit 1\nimport numpy as np\nCONSTANT = 3\n" + nb.cells[i].source
        + "\nprint('top-level code')\ncheck('x')\n")
    del nb.cells[i]
    nb.cells.append(moved)
    ex = extract(COURSE, ZOO_NB, nb)
    (cell,) = [c for c in ex.plan.cells if q.grade_id in c.questions]
    assert "print(" not in cell.source.split("def ")[0] and "check(" not in cell.source
    assert "import numpy as np" in cell.source and "CONSTANT = 3" in cell.source
    assert all(f"def {f}" in cell.source for f in q.functions)
    assert "not found" in " ".join(ex.notes[q.grade_id])


@pytest.mark.skipif(len(SOURCES) < 2, reason="needs two notebooks with graded tasks")
def test_whole_submission_timeout_covers_all_of_a_students_notebooks(tmp_path):
    first, second = sorted(SOURCES)[:2]
    victim = auto(first)[0]
    stuck = with_answer(SOURCES[first], victim.grade_id,
                        stub_functions(victim.functions, "while True:\n    pass"))
    folder = tmp_path / "subs" / "slow_student"
    write(folder / "a.ipynb", stuck)
    write(folder / "b.ipynb", SOURCES[second])
    rows, _ = grade(tmp_path / "out", folder,
                    extra=["--notebooks", f"{first},{second}", "--submission-timeout", "3"])
    row = rows["slow_student"]
    assert "timeout" in row["status"] and f"{second}: " in row["status"], row["status"]
    assert "timeout (whole submission)" in row["status"]
    for q in auto(second):  # never reached: the student's time was used up in the first one
        assert points(row, q) == 0.0
    feedback = (tmp_path / "out" / "feedback" / "slow_student.md").read_text()
    assert "whole submission" in feedback
