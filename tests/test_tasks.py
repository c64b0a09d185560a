"""Every graded task in the registry: the reference passes, each planted mistake is named."""

import numpy as np
import pytest

from course.checks import check, use_or_reference
from course.tasks import Case, Mistake, Task, all_tasks, evaluate, run_case, score

TASKS = list(all_tasks().values())
MISTAKES = [(t, m) for t in TASKS for m in t.mistakes]
SEEDS = (0, 1, 2024)  # 0 is what check cells use; the others stand in for hidden grading seeds


def _stubs(task):
    def stub(*args, **kwargs):
        raise NotImplementedError("stub")
    return (stub,) * len(task.functions)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: f"{t.notebook[:2]}:{t.grade_id}")
def test_reference_passes_every_case_for_every_seed(task):
    for seed in SEEDS:
        cases = task.cases(seed)
        assert len(cases) >= 2, "a task needs several cases to tell mistakes apart"
        for case in cases:
            verdict = evaluate(task, case, run_case(task, task.reference, case))
            assert verdict.passed, f"seed {seed}, {case.label}: {verdict.message}"


@pytest.mark.parametrize("task", TASKS, ids=lambda t: f"{t.notebook[:2]}:{t.grade_id}")
def test_task_is_well_formed(task):
    # The one grade-id rule for auto-graded answers (written ones: tests/test_notebooks.py).
    assert task.grade_id == task.functions[0], "a task's grade_id is its first function's name"
    assert task.points > 0 and task.checks
    assert len(task.reference) == len(task.functions)
    assert task.mistakes, "every graded exercise names at least one typical mistake"
    for m in task.mistakes:
        assert len(m.impl) == len(task.functions), m.name
        assert len(m.message) > 20, f"{m.name}: say what is wrong and what to do"
    assert len({m.name for m in task.mistakes}) == len(task.mistakes)


@pytest.mark.parametrize("task, mistake", MISTAKES,
                         ids=[f"{t.notebook[:2]}:{t.grade_id}-{m.name}" for t, m in MISTAKES])
def test_each_planted_mistake_is_named_by_its_own_message(task, mistake, capsys):
    for seed in SEEDS:
        verdicts = [evaluate(task, c, run_case(task, mistake.impl, c)) for c in task.cases(seed)]
        failing = [v for v in verdicts if not v.passed]
        assert failing, f"seed {seed}: no case catches the mistake {mistake.name}"
        assert all(v.mistake == mistake.name for v in failing), \
            f"seed {seed}: {[v.mistake for v in failing]} instead of {mistake.name}"
        assert score(task, verdicts) < task.points
    assert check(task.grade_id, *mistake.impl, notebook=task.notebook) is False
    assert mistake.message in capsys.readouterr().out


@pytest.mark.parametrize("task", TASKS, ids=lambda t: f"{t.notebook[:2]}:{t.grade_id}")
def test_unanswered_exercise_says_not_implemented_and_demos_fall_back(task, capsys):
    assert check(task.grade_id, *_stubs(task), notebook=task.notebook) is False
    assert "not implemented yet" in capsys.readouterr().out
    fallback = use_or_reference(task.grade_id, *_stubs(task), notebook=task.notebook)
    fallback = fallback if isinstance(fallback, tuple) else (fallback,)
    assert fallback == task.reference
    assert "course reference" in capsys.readouterr().out
    assert check(task.grade_id, *task.reference, notebook=task.notebook) is True


# The harness itself, on a toy task whose right answer is x * 2.
def _toy(mutable=()):
    def run(fns, inputs):
        return {"out": fns[0](inputs["x"])}
    return Task(grade_id="toy", notebook="00_toy", functions=("double",), points=4,
                checks="doubling", reference=(lambda x: x * 2,),
                make_cases=lambda rng: [Case("a", {"x": rng.normal(size=3)}),
                                        Case("b", {"x": rng.normal(size=(2, 2))})],
                run=run, mutable=mutable,
                mistakes=(Mistake("triple", "tripled instead of doubled", (lambda x: x * 3,)),))


def test_harness_reports_errors_shapes_mutation_and_partial_scores():
    task = _toy()
    case = task.cases()[0]

    def judge(fn):
        return evaluate(task, case, run_case(task, (fn,), case))

    assert judge(lambda x: x * 2).passed
    assert judge(lambda x: x * 3).mistake == "triple"
    v = judge(lambda x: 1 / 0)
    assert v.mistake == "exception" and "ZeroDivisionError" in v.message
    assert "shape (1, 3)" in judge(lambda x: (x * 2)[None]).message
    assert judge(lambda x: x + 1).mistake == "wrong_output"
    assert "NaN" in judge(lambda x: x * np.nan).message

    def doubles_in_place(x):
        x *= 2
        return x

    v = judge(doubles_in_place)
    assert v.mistake == "mutates_input" and "`x`" in v.message
    allowed = _toy(mutable=("x",))
    assert evaluate(allowed, case, run_case(allowed, (doubles_in_place,), case)).passed
    from course.tasks.base import _same
    shards = [np.zeros(2), np.ones(3)]
    assert _same(shards, [np.zeros(2), np.ones(3)]) and not _same(shards, [np.zeros(2), np.ones(2)])
    from course.tasks import Verdict
    assert score(task, [Verdict(True, ""), Verdict(False, "")]) == 2.0
    assert score(task, []) == 0.0
