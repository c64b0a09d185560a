"""The course.tasks package: every graded task in the registry (the reference passes, each planted
mistake is named), the harness, and what is particular to some notebooks' tasks."""

import functools
import inspect

import numpy as np
import pytest

from course import norms
from course.batch_renorm import batch_renorm_forward
from course.batchnorm import batchnorm_backward_alt, batchnorm_forward
from course.bn_net import bn_net_loss
from course.checks import Passed, check, use_or_reference
from course.folding import fold_batchnorm
from course.gradcheck import rel_error
from course.rmsnorm import rmsnorm_backward, rmsnorm_forward
from course.running_stats import pytorch_running_update
from course.saturation import saturation_fraction
from course.sync_bn import sync_batchnorm_backward, sync_batchnorm_forward
from course.tasks import (
    Case,
    Mistake,
    Task,
    all_tasks,
    evaluate,
    evaluate_all,
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
# Notebook 07: a regularisation mistake cannot show with reg = 0 or in test mode (no loss), a
# test-mode mistake only in test mode, a clipping mistake only where clipping happens.
SOME_CASES_ONLY_MISTAKES |= {("07_why_bn_helps", "bn_net_loss", m) for m in (
    "reg_grad_missing", "reg_grad_doubled", "reg_loss_missing", "reg_on_gamma",
    "test_in_train_mode", "bn_backward_skipped")}
SOME_CASES_ONLY_MISTAKES |= {("07_why_bn_helps", "batch_renorm_forward", m) for m in (
    "not_clipped", "r_clip_from_zero", "test_mode_ignored", "sigma_without_eps", "d_sign",
    "d_not_scaled", "r_inverted", "running_not_updated", "ddof1")}


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
    # Re-running the check after a demo put the reference in the student's place (its names now
    # bound to the course's functions) must not praise the course's code as the student's.
    assert not check(task.grade_id, *fallback, notebook=task.notebook)
    out = capsys.readouterr().out
    assert "The course reference is checked here, not your answer" in out
    assert "Well done" not in out
    assert all(len(line) <= 90 for line in out.splitlines()), out
    # The same code as the student's own (a function of theirs that calls it) passes.
    own = tuple(functools.wraps(f)(lambda *a, f=f, **k: f(*a, **k)) for f in task.reference)
    assert check(task.grade_id, *own, notebook=task.notebook)
    assert f"All {len(task.cases())} cases pass" in capsys.readouterr().out


@pytest.mark.parametrize("task", [t for t in TASKS if "gamma" in t.cases()[0].inputs],
                         ids=lambda t: f"{t.notebook[:2]}:{t.grade_id}")
def test_cases_use_random_parameters_and_upstream_gradients(task):
    for case in task.cases(0):
        gamma = case.inputs["gamma"]
        assert not np.allclose(gamma, 1.0)
        assert not np.allclose(case.inputs.get("beta", 1.0), 0.0)  # RMSNorm has no beta
        if "dout" in case.inputs:
            assert not np.allclose(case.inputs["dout"], case.inputs["dout"].flat[0])


# ---------------------------------------------------------------- diagnoses beyond the catalogue
# Wrong answers that no task's catalogue lists, each with the words of the property hint it must
# get: the feedback points at the slip although nobody planted it.


def _eps(p):
    return p.get("eps", 1e-5)


# 01 saturation_fraction
def sat_percent(z, threshold=4.0):
    return 100 * saturation_fraction(z, threshold)


def sat_per_example(z, threshold=4.0):
    return np.mean(np.abs(z) > threshold, axis=1)


def sat_complement(z, threshold=4.0):
    return float(np.mean(np.abs(z) <= threshold))


# 01 standardize
def std_whole_eps_outside(x, eps=1e-5):
    return (x - x.mean()) / x.std(ddof=1)


def std_not_divided(x, eps=1e-5):
    return x - x.mean(axis=0)


def std_ddof1_no_eps(x, eps=1e-5):
    return (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)


# 02 batchnorm_forward
def fwd_beta_missing(x, gamma, beta, bn_param):
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    return out - beta, cache


def fwd_by_variance(x, gamma, beta, bn_param):
    xmu = x - x.mean(axis=0)
    return gamma * xmu / (x.var(axis=0) + _eps(bn_param)) + beta, {}


def fwd_whole_eps_outside(x, gamma, beta, bn_param):
    return gamma * (x - x.mean()) / np.sqrt(x.var(axis=0) + _eps(bn_param)) + beta, {}


def fwd_ddof1_no_eps(x, gamma, beta, bn_param):
    return gamma * (x - x.mean(axis=0)) / x.std(axis=0, ddof=1) + beta, {}


# 03 staged (batchnorm_backward)
def _nodes(cache):
    return (cache[k] for k in ("x_hat", "gamma", "xmu", "var", "eps", "inv_std"))


def _staged(dout, cache, dvar_sign=-1.0, dmu_over_N=True):
    """The staged backward pass, with the sign of dvar and the 1/N of dmu as knobs."""
    x_hat, gamma, xmu, var, eps, inv_std = _nodes(cache)
    N = dout.shape[0]
    dx_hat = dout * gamma
    dvar = dvar_sign * (dx_hat * xmu).sum(0) / (var + eps) * 0.5 / np.sqrt(var + eps)
    dxmu = dx_hat * inv_std + 2 * xmu * dvar / N
    dmu = dxmu.sum(0) / N if dmu_over_N else dxmu.sum(0)
    return dxmu - dmu, (dout * x_hat).sum(0), dout.sum(0)


def staged_dstd_sign(dout, cache):
    return _staged(dout, cache, dvar_sign=1.0)  # sign flipped


def staged_dmu_not_shared(dout, cache):
    return _staged(dout, cache, dmu_over_N=False)  # dmu not divided by N


def staged_unpacks_cache(dout, cache):
    x, mu, xmu, sq, var, std, inv_std, x_hat, gamma = cache
    return dout, dout.sum(0), dout.sum(0)


# 03 closed form (batchnorm_backward_alt)
def _sums(dout, cache):
    x_hat, gamma, inv_std = cache["x_hat"], cache["gamma"], cache["inv_std"]
    return x_hat, gamma, inv_std, dout.shape[0], dout.sum(0), (dout * x_hat).sum(0)


def closed_no_over_N(dout, cache):
    x_hat, gamma, inv_std, N, db, dg = _sums(dout, cache)
    return gamma * inv_std * (N * dout - db - x_hat * dg), dg, db


def closed_var_sign(dout, cache):
    x_hat, gamma, inv_std, N, db, dg = _sums(dout, cache)
    return gamma * inv_std / N * (N * dout - db + x_hat * dg), dg, db


def closed_dbeta_mean(dout, cache):
    dx, dg, db = batchnorm_backward_alt(dout, cache)
    return dx, dg, db / dout.shape[0]


# 04 batchnorm_forward (train and test)
def _train_or_test(x, gamma, beta, bn_param, test_out):
    if bn_param.get("mode", "train") == "train":
        return batchnorm_forward(x, gamma, beta, bn_param)
    D = x.shape[1]
    rm, rv = bn_param.get("running_mean", np.zeros(D)), bn_param.get("running_var", np.ones(D))
    return test_out(x, gamma, beta, rm, rv, _eps(bn_param)), {}


def modes_test_batch_mean(x, gamma, beta, bn_param):
    return _train_or_test(x, gamma, beta, bn_param, lambda x, g, b, rm, rv, e:
                          g * (x - x.mean(0)) / np.sqrt(rv + e) + b)


def modes_test_minus_beta(x, gamma, beta, bn_param):
    return _train_or_test(x, gamma, beta, bn_param, lambda x, g, b, rm, rv, e:
                          g * (x - rm) / np.sqrt(rv + e) - b)


def modes_train_ddof1(x, gamma, beta, bn_param):
    if bn_param.get("mode", "train") == "test":
        return batchnorm_forward(x, gamma, beta, bn_param)
    N = x.shape[0]
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    xmu = x - x.mean(0)
    out = gamma * xmu / np.sqrt(x.var(0) * N / (N - 1) + _eps(bn_param)) + beta
    return out, cache


# 04 pytorch_running_update
def torch_swapped(running_mean, running_var, x, momentum):
    rm, rv = pytorch_running_update(running_mean, running_var, x, momentum)
    return rv, rm


def torch_float16(running_mean, running_var, x, momentum):
    rm, rv = pytorch_running_update(running_mean, running_var, x, momentum)
    return rm.astype(np.float16), rv.astype(np.float16)


# 05 spatial batch norm
def spatial_beta_missing(x, gamma, beta, bn_param):
    out, cache = norms.spatial_batchnorm_forward(x, gamma, beta, bn_param)
    return out - beta.reshape(1, -1, 1, 1), cache


def spatial_dx_no_gamma(dout, cache):
    dx, dg, db = norms.spatial_batchnorm_backward(dout, cache)
    return dx / cache[0]["gamma"].reshape(1, -1, 1, 1), dg, db


def spatial_dbeta_mean(dout, cache):
    dx, dg, db = norms.spatial_batchnorm_backward(dout, cache)
    N, C, H, W = dout.shape
    return dx, dg, db / (N * H * W)


# 05 layer norm
def ln_ddof1_eps_outside(x, gamma, beta, ln_param):
    out, cache = norms.layernorm_forward(x, gamma, beta, ln_param)
    xmu = x - x.mean(axis=1, keepdims=True)
    return gamma * xmu / (x.std(axis=1, ddof=1, keepdims=True) + _eps(ln_param)) + beta, cache


def ln_dx_no_gamma(dout, cache):
    dx, dg, db = norms.layernorm_backward(dout, cache)
    return dx / cache["gamma"], dg, db


def ln_dbeta_per_example(dout, cache):
    dx, dg, db = norms.layernorm_backward(dout, cache)
    return dx, dg, dout.sum(axis=1)


# 06 fold_batchnorm
def fold_gamma_missing(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    s = 1 / np.sqrt(running_var + eps)
    return w * s, (b - running_mean) * s + beta


def fold_minus_beta(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    w2, b2 = fold_batchnorm(w, b, gamma, beta, running_mean, running_var, eps)
    return w2, b2 - 2 * beta


def fold_beta_missing(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    w2, b2 = fold_batchnorm(w, b, gamma, beta, running_mean, running_var, eps)
    return w2, b2 - beta


# 06 sync_batchnorm_forward
def sync_minus_beta(shards, gamma, beta, bn_param):
    outs, cache = sync_batchnorm_forward(shards, gamma, beta, bn_param)
    return [o - 2 * beta for o in outs], cache


def sync_whole_array(shards, gamma, beta, bn_param):
    outs, cache = sync_batchnorm_forward(shards, gamma, beta, bn_param)
    x = np.concatenate(shards)
    mu, var = x.mean(), x.var()
    return [gamma * (s - mu) / np.sqrt(var + _eps(bn_param)) + beta for s in shards], cache


def sync_ddof1_eps_outside(shards, gamma, beta, bn_param):
    outs, cache = sync_batchnorm_forward(shards, gamma, beta, bn_param)
    x = np.concatenate(shards)
    mu, sd = x.mean(axis=0), x.std(axis=0, ddof=1)
    return [gamma * (s - mu) / (sd + _eps(bn_param)) + beta for s in shards], cache


# 06 sync_batchnorm_backward
def sync_bwd_no_gamma(douts, cache):
    dxs, dg, db = sync_batchnorm_backward(douts, cache)
    return [d / cache["gamma"] for d in dxs], dg, db


def sync_bwd_mean_sign(douts, cache):
    x_hats, inv_std, gamma, n = cache["x_hat"], cache["inv_std"], cache["gamma"], cache["count"]
    db = sum(d.sum(0) for d in douts)
    dg = sum((d * xh).sum(0) for d, xh in zip(douts, x_hats, strict=True))
    dxs = [(gamma * inv_std / n) * (n * d + db - xh * dg)  # + db: the sign of the mean term
           for d, xh in zip(douts, x_hats, strict=True)]
    return dxs, dg, db


def sync_bwd_unpacks(douts, cache):
    x_hats, inv_std, gamma = cache
    return douts, 0, 0


def _net_loss_changed(change, X, params, bn_params, y, reg):
    """bn_net_loss, with `change(loss, grads)` applied where it computes a loss (y given)."""
    result = bn_net_loss(X, params, bn_params, y, reg)
    return result if y is None else change(*result)


def net_loss_doubled(X, params, bn_params, y=None, reg=0.0):
    return _net_loss_changed(  # a sum over two copies of the batch, say
        lambda loss, grads: (2 * loss, {k: 2 * g for k, g in grads.items()}),
        X, params, bn_params, y, reg)


def net_dbeta_sign(X, params, bn_params, y=None, reg=0.0):
    def flip_dbeta(loss, grads):
        return loss, {k: -g if k.startswith("beta") else g for k, g in grads.items()}
    return _net_loss_changed(flip_dbeta, X, params, bn_params, y, reg)


def rms_forward_doubled(x, gamma, rms_param):
    out, cache = rmsnorm_forward(x, gamma, rms_param)
    return 2 * out, cache


def rms_backward_negated(dout, cache):
    dx, dgamma = rmsnorm_backward(dout, cache)
    return -dx, dgamma


def brn_beta_twice(x, gamma, beta, bn_param):
    out, cache = batch_renorm_forward(x, gamma, beta, bn_param)
    return out + beta, cache


def brn_negated(x, gamma, beta, bn_param):
    out, cache = batch_renorm_forward(x, gamma, beta, bn_param)
    return -out, cache


# Mistakes no task lists: (notebook, task, the student's function, a word its hint must hold).
UNLISTED_FUNCTIONS = [
    ("01_why_normalize", "saturation_fraction", sat_percent, "percentage"),
    ("01_why_normalize", "saturation_fraction", sat_per_example, "a single number"),
    ("01_why_normalize", "saturation_fraction", sat_complement, "complement"),
    ("01_why_normalize", "standardize", std_whole_eps_outside, "whole array"),
    ("01_why_normalize", "standardize", std_not_divided, "never divided"),
    ("01_why_normalize", "standardize", std_ddof1_no_eps, "N − 1"),
    ("02_forward_pass", "batchnorm_forward", fwd_beta_missing, "β is missing"),
    ("02_forward_pass", "batchnorm_forward", fwd_by_variance, "divided by the variance"),
    ("02_forward_pass", "batchnorm_forward", fwd_whole_eps_outside,
     "mean was taken over the whole array"),
    ("02_forward_pass", "batchnorm_forward", fwd_ddof1_no_eps, "N − 1"),
    ("03_backward_pass", "batchnorm_backward", staged_dstd_sign, "dstd"),
    ("03_backward_pass", "batchnorm_backward", staged_dmu_not_shared, "dmu / N"),
    ("03_backward_pass", "batchnorm_backward", staged_unpacks_cache, "cache is a dict"),
    ("03_backward_pass", "batchnorm_backward_alt", closed_no_over_N, "γ/(N·σ)"),
    ("03_backward_pass", "batchnorm_backward_alt", closed_var_sign, "−x̂·Σ(dout·x̂) term"),
    ("03_backward_pass", "batchnorm_backward_alt", closed_dbeta_mean, "1/N"),
    ("04_running_stats", "batchnorm_forward", modes_test_batch_mean, "batch's own"),
    ("04_running_stats", "batchnorm_forward", modes_test_minus_beta, "− beta"),
    ("04_running_stats", "batchnorm_forward", modes_train_ddof1, "N − 1"),
    ("04_running_stats", "pytorch_running_update", torch_swapped, "holds what"),
    ("04_running_stats", "pytorch_running_update", torch_float16, "float16"),
    ("05_cnn_and_layernorm", "spatial_batchnorm_forward", spatial_beta_missing, "β is missing"),
    ("05_cnn_and_layernorm", "spatial_batchnorm_forward", spatial_dx_no_gamma, "γ is missing"),
    ("05_cnn_and_layernorm", "spatial_batchnorm_forward", spatial_dbeta_mean, "1/(N·H·W)"),
    ("05_cnn_and_layernorm", "layernorm_forward", ln_ddof1_eps_outside, "D − 1"),
    ("05_cnn_and_layernorm", "layernorm_forward", ln_dx_no_gamma, "γ is missing"),
    ("05_cnn_and_layernorm", "layernorm_forward", ln_dbeta_per_example, "one value per example"),
    ("06_in_practice", "fold_batchnorm", fold_gamma_missing, "1/γ"),
    ("06_in_practice", "fold_batchnorm", fold_minus_beta, "− beta"),
    ("06_in_practice", "fold_batchnorm", fold_beta_missing, "β is missing"),
    ("06_in_practice", "sync_batchnorm_forward", sync_minus_beta, "− beta"),
    ("06_in_practice", "sync_batchnorm_forward", sync_whole_array, "whole array"),
    ("06_in_practice", "sync_batchnorm_forward", sync_ddof1_eps_outside, "N − 1"),
    ("06_in_practice", "sync_batchnorm_backward", sync_bwd_no_gamma, "γ is missing"),
    ("06_in_practice", "sync_batchnorm_backward", sync_bwd_mean_sign, "wrong sign"),
    ("06_in_practice", "sync_batchnorm_backward", sync_bwd_unpacks, "cache is a dict"),
    ("07_why_bn_helps", "bn_net_loss", net_loss_doubled, "factor 2 too many"),
    ("07_why_bn_helps", "bn_net_loss", net_dbeta_sign, "`dbeta1` has the opposite sign"),
    ("07_why_bn_helps", "rmsnorm_forward", rms_forward_doubled, "factor 2 too many"),
    ("07_why_bn_helps", "rmsnorm_forward", rms_backward_negated, "`dx` has the opposite sign"),
    ("07_why_bn_helps", "batch_renorm_forward", brn_beta_twice, "β is added twice"),
    ("07_why_bn_helps", "batch_renorm_forward", brn_negated, "sign is flipped"),
]


def _in_place_of_its_reference(task, fn):
    """The task's reference functions with `fn` in place of the one that has its parameters."""
    if len(task.reference) == 1:
        return (fn,)
    params = list(inspect.signature(fn).parameters)
    slots = [i for i, ref in enumerate(task.reference)
             if list(inspect.signature(ref).parameters) == params]
    assert len(slots) == 1, (fn.__name__, slots)
    return tuple(fn if i == slots[0] else ref for i, ref in enumerate(task.reference))


UNLISTED = [(nb, gid, _in_place_of_its_reference(get(gid, nb), fn), hint)
            for nb, gid, fn, hint in UNLISTED_FUNCTIONS]


def check_verdicts(task, impl, seed):
    """The verdicts a check cell gives impl on the task's cases for this seed."""
    cases = task.cases(seed)
    return evaluate_all(task, cases, [run_case(task, impl, c) for c in cases])


@pytest.mark.parametrize("nb, gid, impl, hint", UNLISTED,
                         ids=[f"{nb[:2]}:{'+'.join(f.__name__ for f in fns)}"
                              for nb, _, fns, _ in UNLISTED])
def test_property_diagnosis_names_an_unlisted_mistake(nb, gid, impl, hint, capsys):
    task = get(gid, nb)
    for seed in SEEDS:
        verdicts = check_verdicts(task, impl, seed)
        failing = [v for v in verdicts if not v.passed]
        assert failing, f"seed {seed}: no case fails"
        assert score(task, verdicts) < task.points
        for v in failing:
            assert v.mistake in ("wrong_output", "exception", "output_type"), \
                f"seed {seed}: {v.mistake} is in the catalogue; pick an unlisted mistake"
            # The one explanation that fits every failing case is named in each of them.
            assert hint in v.message, f"seed {seed}: {hint!r} not in {v.message}"
    assert not check(gid, *impl, notebook=nb)
    assert hint in capsys.readouterr().out


def test_every_task_has_unlisted_mistakes_diagnosed():
    covered = {}
    for nb, gid, _, _ in UNLISTED:
        covered[nb, gid] = covered.get((nb, gid), 0) + 1
    assert set(covered) == set(all_tasks())
    assert min(covered.values()) >= 2


def test_feedback_says_which_outputs_are_right_and_never_a_bare_bool(capsys):
    result = check("batchnorm_backward_alt", closed_dbeta_mean)
    out = capsys.readouterr().out
    assert "`dx` and `dgamma` are right, `dbeta` is wrong" in out
    assert out.count("a mean where a sum belongs") == 1  # one line for a repeated message
    assert out.count("same as above") == len(get("batchnorm_backward_alt").cases()) - 1
    assert isinstance(result, Passed) and not result and result == False  # noqa: E712
    assert result._ipython_display_() is None  # nothing shown under the table
    assert "True" not in out and "False" not in out


def test_diagnoses_never_change_points():
    # The words come after the verdict: a task without views or symbols scores the same.
    import dataclasses
    for (nb, gid), task in all_tasks().items():
        bare = dataclasses.replace(task, views={}, symbols=None)
        for impl in [u[2] for u in UNLISTED if u[:2] == (nb, gid)]:
            for case in task.cases(1):
                result = run_case(task, impl, case)
                a, b = evaluate(task, case, result), evaluate(bare, case, result)
                assert a.passed == b.passed and a.mistake == b.mistake


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


def test_hint_cache_keys_are_the_caches_keys():
    from course.sync_bn import sync_batchnorm_forward as sync_forward
    x = np.random.default_rng(0).normal(size=(4, 2))
    _, cache = batchnorm_forward(x, np.ones(2), np.zeros(2), {"mode": "train"})
    assert get("batchnorm_backward").cache_keys == tuple(cache)
    _, cache = sync_forward([x[:2], x[2:]], np.ones(2), np.zeros(2), {"mode": "train"})
    assert set(get("sync_batchnorm_backward").cache_keys) == set(cache)


def test_a_failing_diagnosis_falls_back_to_the_plain_message(monkeypatch):
    from course.tasks import diagnose

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug in a hint")

    monkeypatch.setattr(diagnose, "explain_output", broken)
    task = get("batchnorm_backward_alt")
    case = task.cases()[0]
    v = evaluate(task, case, run_case(task, (closed_dbeta_mean,), case))
    assert not v.passed and "`dbeta` differs from the expected values" in v.message
