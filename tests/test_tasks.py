"""The course.tasks package: every graded task in the registry (the reference passes, each planted
mistake is named), the harness, and what is particular to some notebooks' tasks."""

import numpy as np
import pytest

from course.batchnorm import batchnorm_forward
from course.checks import check, use_or_reference
from course.gradcheck import rel_error
from course.tasks import (
    Case,
    Mistake,
    Task,
    all_tasks,
    evaluate,
    get,
    run_case,
    score,
)
from course.tasks import nb03 as tasks03
from course.tasks.nb04 import _forward as nb04_forward

TASKS = list(all_tasks().values())
MISTAKES = [(t, m) for t in TASKS for m in t.mistakes]
SEEDS = (0, 1, 2, 3, 4, 7, 2024)  # 0 is what check cells use; the others stand in for hidden ones
# Tasks with a case that cannot show some mistake: 04's train-only case has no test-mode output.
# In every other task, every case names every mistake.
SOME_CASES_ONLY = {("04_running_stats", "batchnorm_forward")}
# A float32 computation can land within the tolerance on a well-conditioned case (then it is
# right there); the nearly constant features of the other cases always show it.
SOME_CASES_ONLY_MISTAKES = {("02_forward_pass", "batchnorm_forward", "float32")}


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
    assert task.points > 0 and task.checks
    assert task.mistakes, "every graded exercise names at least one typical mistake"
    for m in task.mistakes:
        assert len(m.impl) == len(task.functions), m.name
        assert len(m.message) > 20, f"{m.name}: say what is wrong and what to do"
    assert len({m.name for m in task.mistakes}) == len(task.mistakes)


@pytest.mark.parametrize("task, mistake", MISTAKES,
                         ids=[f"{t.notebook[:2]}:{t.grade_id}-{m.name}" for t, m in MISTAKES])
def test_each_planted_mistake_is_named_by_its_own_message(task, mistake, capsys):
    some_only = ((task.notebook, task.grade_id) in SOME_CASES_ONLY
                 or (task.notebook, task.grade_id, mistake.name) in SOME_CASES_ONLY_MISTAKES)
    for seed in SEEDS:
        verdicts = [evaluate(task, c, run_case(task, mistake.impl, c)) for c in task.cases(seed)]
        failing = [v for v in verdicts if not v.passed]
        assert failing, f"seed {seed}: no case catches the mistake {mistake.name}"
        if not some_only:
            assert len(failing) == len(verdicts), f"seed {seed}: a case misses {mistake.name}"
        assert all(v.mistake == mistake.name for v in failing), \
            f"seed {seed}: {[v.mistake for v in failing]} instead of {mistake.name}"
        assert score(task, verdicts) < task.points
    assert not check(task.grade_id, *mistake.impl, notebook=task.notebook)
    out = capsys.readouterr().out
    assert mistake.message in out
    if (task.notebook, task.grade_id, mistake.name) not in SOME_CASES_ONLY_MISTAKES:
        assert ("✓" in out) == ((task.notebook, task.grade_id) in SOME_CASES_ONLY)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: f"{t.notebook[:2]}:{t.grade_id}")
def test_unanswered_exercise_says_not_implemented_and_demos_fall_back(task, capsys):
    assert not check(task.grade_id, *_stubs(task), notebook=task.notebook)
    assert "not implemented yet" in capsys.readouterr().out
    fallback = use_or_reference(task.grade_id, *_stubs(task), notebook=task.notebook)
    fallback = fallback if isinstance(fallback, tuple) else (fallback,)
    assert fallback == task.reference
    assert "course reference" in capsys.readouterr().out
    assert check(task.grade_id, *task.reference, notebook=task.notebook)
    assert f"All {len(task.cases())} cases pass" in capsys.readouterr().out


@pytest.mark.parametrize("task", [t for t in TASKS if "gamma" in t.cases()[0].inputs],
                         ids=lambda t: f"{t.notebook[:2]}:{t.grade_id}")
def test_cases_use_random_parameters_and_upstream_gradients(task):
    for case in task.cases(0):
        gamma = case.inputs["gamma"]
        assert not np.allclose(gamma, 1.0) and not np.allclose(case.inputs["beta"], 0.0)
        if "dout" in case.inputs:
            assert not np.allclose(case.inputs["dout"], case.inputs["dout"].flat[0])


# ---------------------------------------------------------------- 02: batchnorm_forward

def test_02_forward_names_in_place_mutation_of_x():
    def forward_in_place(x, gamma, beta, bn_param):
        mu = x.mean(axis=0)
        x -= mu  # the mistake: the caller's x changes
        x /= np.sqrt((x**2).mean(axis=0) + bn_param.get("eps", 1e-5))
        return gamma * x + beta, {}

    task = get("batchnorm_forward", "02_forward_pass")
    for case in task.cases(0):
        verdict = evaluate(task, case, run_case(task, (forward_in_place,), case))
        assert verdict.mistake == "mutates_input" and "`x`" in verdict.message


def test_02_forward_accepts_any_cache_and_updates_to_bn_param():
    def forward_small_cache(x, gamma, beta, bn_param):
        out, cache = batchnorm_forward(x, gamma, beta, bn_param)
        return out, {"x_hat": cache["x_hat"]}

    assert check("batchnorm_forward", forward_small_cache, notebook="02_forward_pass")


def test_02_forward_explains_a_missing_cache(capsys):
    def forward_out_only(x, gamma, beta, bn_param):
        return batchnorm_forward(x, gamma, beta, bn_param)[0]

    assert not check("batchnorm_forward", forward_out_only, notebook="02_forward_pass")
    assert "must return the pair (out, cache)" in capsys.readouterr().out


# ---------------------------------------------------------------- 03: batchnorm_backward(_alt)

def test_03_all_ones_upstream_gradient_hides_a_missing_variance_path():
    # The hygiene lesson of notebook 03: with dout = 1, dx is zero for the right backward AND
    # for the one missing the variance path, so such a check cannot tell them apart.
    for case in tasks03.TASKS[0].cases(0):
        x, dout = case.inputs["x"], case.inputs["dout"]  # dout random: it tells them apart
        _, cache = batchnorm_forward(x, case.inputs["gamma"], case.inputs["beta"],
                                     {"mode": "train"})
        ones = np.ones_like(x)
        np.testing.assert_allclose(tasks03._no_var_path(ones, cache)[0], 0.0, atol=1e-12)
        for task in tasks03.TASKS:
            (backward,) = task.reference
            np.testing.assert_allclose(backward(ones, cache)[0], 0.0, atol=1e-12)
            assert rel_error(backward(dout, cache)[0],
                             tasks03._no_var_path(dout, cache)[0]) > 1e-2


# ---------------------------------------------------------------- 04: batchnorm_forward (modes)

def test_04_switch_free_mistake_implementation_is_correct():
    # With no switch set it is the reference, in train and test mode (its cases cover both).
    task = get("batchnorm_forward", "04_running_stats")
    for case in task.cases(3):
        assert evaluate(task, case, run_case(task, (nb04_forward,), case)).passed


# The harness itself, on a toy task whose right answer is x * 2.
def _toy(mutable=()):
    def run(fns, inputs):
        return {"out": fns[0](inputs["x"])}
    def double(x):
        return x * 2
    return Task(notebook="00_toy", points=4, checks="doubling", reference=(double,),
                make_cases=lambda rng: [Case("a", {"x": rng.normal(size=3)}),
                                        Case("b", {"x": rng.normal(size=(2, 2))})],
                run=run, mutable=mutable,
                mistakes=(Mistake("triple", "tripled instead of doubled", (lambda x: x * 3,)),))


def test_the_grade_id_rule_holds_by_construction():
    # Auto-graded answers are named after their first function (written ones:
    # tests/test_notebooks.py); a Task cannot be given another name.
    task = _toy()
    assert task.functions == ("double",) and task.grade_id == "double"
    with pytest.raises(TypeError):
        Task(grade_id="other", notebook="00_toy", points=1, checks="", reference=task.reference,
             make_cases=task.make_cases, run=task.run)


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
