"""Points only for the student's own code: every route in routes.py earns full marks against the
real package (the control) and 0 through the grader, with real sandboxed processes; a pasted
reference is reported with its similarity; the sandbox holds only what the question may use."""

import csv
import subprocess
import sys

import pytest
from grade_helpers import COURSE, PY, SOURCES, auto, with_answer, write
from routes import ROUTES, pasted

from course.grade.sandbox import bwrap, copy
from course.grade.sandbox.harness import strip_magics
from course.tasks.base import evaluate, run_case

# One grading run of ~100 single-notebook students: minutes on a loaded 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800),
              pytest.mark.skipif(bwrap.probe() is not None, reason="needs bubblewrap")]
HIDDEN_LIKE = 987654321  # a seed other than the public one: a route must not depend on it
# What a route earns with its own code alone: the numerical-gradient network wires its test-mode
# forward pass itself from the layers it may use, so the test-mode case (1 of 4) is its own.
EARNS = {"numerical_gradient_from_setup_net": 1.0}
# Finite differences are not exact on the cases whose spread is comparable to ε: these two routes
# earn most, not all, of the points on the real package (still 0 through the grader).
APPROXIMATE = {"numerical_gradient", "numerical_gradient_from_setup_net"}


def _control_namespace(nb_id, source):
    ns = {"__name__": "__main__"}
    for cell in COURSE.setup(nb_id):
        exec(compile(strip_magics(cell), "<setup>", "exec"), ns)  # noqa: S102 - our own cells
    exec(compile(source, "<route>", "exec"), ns)  # noqa: S102 - the route, on the real package
    return ns


@pytest.mark.parametrize("nb_id, gid, name, source",
                         [r for r in ROUTES if r[2] not in ("complex_output", "object_strings")
                          and r[2] not in APPROXIMATE],
                         ids=[f"{r[1]}-{r[2]}" for r in ROUTES
                              if r[2] not in ("complex_output", "object_strings")
                              and r[2] not in APPROXIMATE])
def test_each_route_earns_full_marks_on_the_real_package(nb_id, gid, name, source):
    """The control: with the real package (and torch) the route is right on every case."""
    if "torch" in source:
        pytest.importorskip("torch", reason="the torch routes need torch to show they are real")
    task = COURSE.tasks[nb_id, gid]
    ns = _control_namespace(nb_id, source)
    fns = [ns[f] for f in task.functions]
    for seed in (0, HIDDEN_LIKE):
        for case in task.cases(seed):
            verdict = evaluate(task, case, run_case(task, fns, case))
            assert verdict.passed, (name, case.label, verdict.message)


@pytest.mark.parametrize("source", [r[3] for r in ROUTES if r[2] in ("complex_output",
                                                                      "object_strings")])
def test_outputs_that_are_not_real_numbers_are_refused_in_the_check_cells_too(source):
    """The real part of a complex answer is right, and strings parse as floats: still refused."""
    task = COURSE.tasks["01_why_normalize", "standardize"]
    ns = _control_namespace("01_why_normalize", source)
    for case in task.cases():
        verdict = evaluate(task, case, run_case(task, [ns["standardize"]], case))
        assert not verdict.passed and verdict.mistake == "output_type"
        assert "the expected values are real float64 numbers" in verdict.message


def _student(nb_id, gid, source):
    return with_answer(SOURCES[nb_id], gid, source)


@pytest.fixture(scope="module")
def routes_batch(tmp_path_factory):
    """One grading run: a student per route, and one per question pasting the reference."""
    tmp = tmp_path_factory.mktemp("routes")
    expected = {}
    for nb_id, gid, name, source in ROUTES:
        student = f"{nb_id}-{gid}-{name}"
        write(tmp / "subs" / f"{student}.ipynb", _student(nb_id, gid, source))
        expected[student] = (nb_id, gid)
    for nb_id in SOURCES:
        for q in auto(nb_id):
            student = f"{nb_id}-{q.grade_id}-pasted"
            write(tmp / "subs" / f"{student}.ipynb",
                  _student(nb_id, q.grade_id, pasted(COURSE.tasks[nb_id, q.grade_id])))
            expected[student] = (nb_id, q.grade_id)
    out = tmp / "out"
    proc = subprocess.run([PY, "-m", "course.grade", *sorted(map(str, (tmp / "subs").iterdir())),
                           "--out", str(out), "--jobs", "2", "--timeout", "20"],
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr
    with open(out / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    return rows, expected, out


@pytest.mark.parametrize("nb_id, gid, name, source", ROUTES,
                         ids=[f"{r[1]}-{r[2]}" for r in ROUTES])
def test_each_route_earns_nothing_in_the_sandbox(routes_batch, nb_id, gid, name, source):
    rows, _, _ = routes_batch
    row = rows[f"{nb_id}-{gid}-{name}"]
    assert float(row[f"{nb_id}:{gid}"]) == EARNS.get(name, 0.0), (name, row["status"])
    others = [q for q in auto(nb_id) if q.grade_id != gid]
    assert all(float(row[q.column]) == q.points for q in others), row  # the rest still counts


def test_every_reaching_route_is_flagged_for_review(routes_batch):
    """Imports of anything but numpy, exec, importlib, __import__, names the setup imported from
    course: every route but the two of the wrong dtype reaches past its own code: reported."""
    rows, _, _ = routes_batch
    for nb_id, gid, name, _source in ROUTES:
        if name not in ("complex_output", "object_strings"):
            assert f"{nb_id}:{gid}" in rows[f"{nb_id}-{gid}-{name}"]["review"], name


def test_non_real_outputs_have_a_clear_status(routes_batch):
    rows, _, out = routes_batch
    for name in ("complex_output", "object_strings"):
        feedback = (out / "feedback" / f"01_why_normalize-standardize-{name}.md").read_text()
        assert "the expected values are real float64 numbers" in feedback


def test_a_pasted_reference_is_reported_with_its_similarity(routes_batch):
    rows, expected, out = routes_batch
    for student, (nb_id, gid) in expected.items():
        if not student.endswith("-pasted"):
            continue
        assert f"{nb_id}:{gid} " in rows[student]["review"], student
        assert "100% similar to the course's reference" in rows[student]["review"], student
        assert "100% similar" in (out / "feedback" / f"{student}.md").read_text()


@pytest.mark.parametrize("nb_id", sorted(SOURCES))
def test_the_grading_copy_keeps_no_graded_function_or_known_route(nb_id):
    """Per group: no reference, and nothing of `course` that computes an answer unless a question
    of the group declares it (Task.may_use); the rest of the package is stubs."""
    tasks = COURSE.tasks
    references = {(f.__module__, f.__name__) for t in tasks.values() for f in t.reference}
    for group in copy.groups(tasks, nb_id):
        dest = copy.grading_copy(tasks, nb_id, _plan(nb_id, group))
        legal = copy.closure([copy._resolve(e) for g in group
                              for e in tasks[nb_id, g].may_use if "." in str(e)
                              or callable(e)])
        probe = subprocess.run([sys.executable, "-I", "-c", PROBE, str(dest)],
                               capture_output=True, text=True, timeout=120)
        assert probe.returncode == 0, probe.stderr
        working = {tuple(x.split(":")) for x in probe.stdout.split()}
        assert not (working & references) - legal, (group, sorted(working & references))


def _plan(nb_id, group):
    from course.grade.sandbox.runner import Plan
    return Plan(nb_id, COURSE.setup(nb_id), [], list(group))


# Imports every module of the copy and prints module:function for each top-level function whose
# body is not the grading stub.
PROBE = r"""
import importlib, inspect, pkgutil, sys
sys.path.insert(0, sys.argv[1])
import course
for info in pkgutil.walk_packages(course.__path__, "course."):
    try:
        m = importlib.import_module(info.name)
    except Exception:
        continue
    for name, f in vars(m).items():
        if inspect.isfunction(f) and f.__module__ == m.__name__:
            src = inspect.getsource(f)
            if "is not available while grading" not in src:
                print(f"{m.__name__}:{name}")
"""
