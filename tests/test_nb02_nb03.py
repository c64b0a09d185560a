"""Forward and backward pass of batch normalisation (notebooks 02 and 03): math and checks."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course.batchnorm import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward
from course.checks import check
from course.gradcheck import numerical_gradient_array, rel_error
from course.tasks import evaluate, get, run_case
from course.tasks import nb03 as tasks03

BACKWARDS = [batchnorm_backward, batchnorm_backward_alt]


def _random(N, D, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 3.0, (N, D))  # (N, D)
    gamma = rng.uniform(0.5, 2.0, D) * rng.choice([-1.0, 1.0], D)  # (D,)
    beta = rng.normal(0.0, 1.0, D)  # (D,)
    dout = rng.normal(0.0, 1.0, (N, D))  # (N, D)
    return x, gamma, beta, dout


def _out(x, gamma, beta, eps=1e-5):
    return batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})[0]


# ---------------------------------------------------------------- exact values, by hand

def test_forward_on_a_hand_computed_2x2_batch():
    # Column 0: mean 2, variance 1; column 1: mean 4, variance 4 -> both x_hat = [-1, 1].
    x = np.array([[1.0, 2.0], [3.0, 6.0]])
    out, cache = batchnorm_forward(x, np.array([2.0, 3.0]), np.array([0.5, -1.0]),
                                   {"mode": "train", "eps": 0.0})
    np.testing.assert_array_equal(cache["mu"], [2.0, 4.0])
    np.testing.assert_array_equal(cache["var"], [1.0, 4.0])
    np.testing.assert_array_equal(out, [[-1.5, -4.0], [2.5, 2.0]])


@pytest.mark.parametrize("backward", BACKWARDS)
def test_backward_on_a_hand_computed_4x1_batch(backward):
    # x = [0, 0, 2, 2]: mean 1, variance 1, x_hat = [-1, -1, 1, 1]. With gamma = 2 and
    # dout = e_0: dbeta = 1, dgamma = -1, dx = 2/4 * (4 e_0 - 1 + x_hat) = [1, -1, 0, 0].
    x = np.array([[0.0], [0.0], [2.0], [2.0]])
    _, cache = batchnorm_forward(x, np.array([2.0]), np.array([0.3]),
                                 {"mode": "train", "eps": 0.0})
    dx, dgamma, dbeta = backward(np.array([[1.0], [0.0], [0.0], [0.0]]), cache)
    np.testing.assert_allclose(dx, [[1.0], [-1.0], [0.0], [0.0]], atol=1e-15)
    np.testing.assert_allclose(dgamma, [-1.0], atol=1e-15)
    np.testing.assert_allclose(dbeta, [1.0], atol=1e-15)


@pytest.mark.parametrize("backward", BACKWARDS)
def test_two_examples_give_zero_dx(backward):
    # With N = 2 and eps = 0, x_hat is always [-1, 1]: the output does not depend on x at all.
    x, gamma, beta, dout = _random(2, 4, seed=3)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": 0.0})
    np.testing.assert_allclose(np.abs(cache["x_hat"]), 1.0, rtol=1e-12)
    np.testing.assert_allclose(backward(dout, cache)[0], 0.0, atol=1e-12)


# ---------------------------------------------------------------- numerical gradient checks

@pytest.mark.parametrize("backward", BACKWARDS)
@pytest.mark.parametrize("shape", [(4, 3), (10, 5), (3, 7)])
def test_backward_matches_centred_differences(backward, shape):
    x, gamma, beta, dout = _random(*shape, seed=sum(shape))
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx, dgamma, dbeta = backward(dout, cache)
    dx_num = numerical_gradient_array(lambda v: _out(v, gamma, beta), x.copy(), dout)
    dgamma_num = numerical_gradient_array(lambda g: _out(x, g, beta), gamma.copy(), dout)
    dbeta_num = numerical_gradient_array(lambda b: _out(x, gamma, b), beta.copy(), dout)
    assert rel_error(dx, dx_num) <= 1e-8
    assert rel_error(dgamma, dgamma_num) <= 1e-8
    assert rel_error(dbeta, dbeta_num) <= 1e-8


def test_staged_and_closed_form_agree():
    x, gamma, beta, dout = _random(64, 32, seed=7)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    for a, b in zip(batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache),
                    strict=True):
        assert rel_error(a, b) <= 1e-12


@pytest.mark.parametrize("backward", BACKWARDS)
def test_all_ones_upstream_gradient_hides_a_missing_variance_path(backward):
    # The hygiene lesson of notebook 03: with dout = 1, dx is zero for the right backward AND
    # for the one missing the variance path, so such a check cannot tell them apart.
    x, gamma, beta, _ = _random(8, 3, seed=11)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    ones = np.ones_like(x)
    np.testing.assert_allclose(backward(ones, cache)[0], 0.0, atol=1e-12)
    np.testing.assert_allclose(tasks03._no_var_path(ones, cache)[0], 0.0, atol=1e-12)
    dout = np.random.default_rng(0).normal(size=x.shape)  # a random one tells them apart
    assert rel_error(backward(dout, cache)[0], tasks03._no_var_path(dout, cache)[0]) > 1e-2


def test_float32_gradient_check_is_far_less_accurate():
    x, gamma, beta, dout = _random(6, 3, seed=5)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx = batchnorm_backward(dout, cache)[0]
    x32, g32, b32, d32 = (a.astype(np.float32) for a in (x, gamma, beta, dout))
    num32 = numerical_gradient_array(lambda v: _out(v, g32, b32), x32.copy(), d32, h=1e-3)
    num64 = numerical_gradient_array(lambda v: _out(v, gamma, beta), x.copy(), dout)
    assert rel_error(dx, num64) < 1e-8 < 1e-5 < rel_error(dx, num32)


# ---------------------------------------------------------------- properties

finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)
batches = st.tuples(st.integers(2, 12), st.integers(1, 5)).flatmap(
    lambda s: arrays(np.float64, s, elements=finite))


@given(batches)
def test_x_hat_has_zero_mean_and_unit_variance_per_feature(x):
    assume(x.std(axis=0).min() > 1e-2)
    D = x.shape[1]
    _, cache = batchnorm_forward(x, np.ones(D), np.zeros(D), {"mode": "train"})
    var = x.var(axis=0)
    np.testing.assert_allclose(cache["x_hat"].mean(axis=0), 0.0, atol=1e-9)
    # Not exactly 1: eps inside the root shrinks it to var / (var + eps).
    np.testing.assert_allclose(cache["x_hat"].var(axis=0), var / (var + 1e-5), rtol=1e-9)


@given(batches, st.floats(0.01, 100.0), st.floats(-100.0, 100.0), st.integers(0, 2**32 - 1))
def test_output_is_invariant_to_positive_affine_maps_of_the_input(x, a, b, seed):
    assume(x.std(axis=0).min() > 1e-2)
    D = x.shape[1]
    rng = np.random.default_rng(seed)
    gamma, beta = rng.normal(size=D), rng.normal(size=D)
    # eps scales with the variance (a**2) so the invariance is exact, not just approximate.
    np.testing.assert_allclose(_out(a * x + b, gamma, beta, eps=a**2 * 1e-5),
                               _out(x, gamma, beta), atol=1e-7)


@given(batches, st.integers(0, 2**32 - 1))
def test_dx_sums_to_zero_and_is_orthogonal_to_x_hat(x, seed):
    N, D = x.shape
    rng = np.random.default_rng(seed)
    gamma, beta, dout = rng.normal(size=D), rng.normal(size=D), rng.normal(size=(N, D))
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    x_hat, inv_std, var, eps = cache["x_hat"], cache["inv_std"], cache["var"], cache["eps"]
    # Orthogonality is exact only for eps = 0; eps leaves a residue of relative size
    # eps / (var + eps), because scaling x does not scale eps.
    residue = gamma * inv_std * eps / (var + eps) * (dout * x_hat).sum(axis=0)  # (D,)
    # The size dx would have without cancellations: gamma / std * |dout|, N terms.
    scale = N * np.abs(gamma * inv_std).max() * np.abs(dout).max()
    for backward in BACKWARDS:
        dx = backward(dout, cache)[0]
        np.testing.assert_allclose(dx.sum(axis=0) / scale, 0.0, atol=1e-10)
        np.testing.assert_allclose(((dx * x_hat).sum(axis=0) - residue) / scale, 0.0, atol=1e-9)


def test_dx_is_exactly_orthogonal_to_x_hat_without_eps():
    x, gamma, beta, dout = _random(9, 4, seed=8)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": 0.0})
    for backward in BACKWARDS:
        dx = backward(dout, cache)[0]
        np.testing.assert_allclose((dx * cache["x_hat"]).sum(axis=0), 0.0, atol=1e-13)


# ---------------------------------------------------------------- notebook 02 claims

def test_gamma_beta_can_undo_the_normalisation_exactly():
    x, *_ = _random(16, 4, seed=2)
    eps = 1e-5
    gamma, beta = np.sqrt(x.var(axis=0) + eps), x.mean(axis=0)
    np.testing.assert_allclose(_out(x, gamma, beta, eps), x, rtol=1e-12, atol=1e-12)


def test_output_mean_is_beta_and_std_is_gamma():
    x, gamma, beta, _ = _random(200, 5, seed=4)
    out = _out(x, np.abs(gamma), beta)
    np.testing.assert_allclose(out.mean(axis=0), beta, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), np.abs(gamma), rtol=1e-5)


def test_bias_before_bn_has_no_effect_in_train_mode():
    rng = np.random.default_rng(9)
    x, W, b = rng.normal(size=(32, 6)), rng.normal(size=(6, 4)), rng.normal(0, 5, size=4)
    gamma, beta = rng.normal(size=4), rng.normal(size=4)
    np.testing.assert_allclose(_out(x @ W + b, gamma, beta), _out(x @ W, gamma, beta),
                               atol=1e-12)


def test_eps_outside_the_root_is_wrong_for_tiny_variances():
    x = np.array([[1.0], [1.0 + 2e-3], [1.0 - 2e-3], [1.0]])  # variance 2e-6, below eps
    inside = batchnorm_forward(x, np.ones(1), np.zeros(1), {"mode": "train"})[0]
    std = x.std(axis=0)
    outside = (x - x.mean(axis=0)) / (std + 1e-5)
    assert np.abs(outside).max() > 2 * np.abs(inside).max()


# ---------------------------------------------------------------- graded tasks

NOTEBOOK_OF = {"batchnorm_forward": "02_forward_pass", "batchnorm_backward": "03_backward_pass",
               "batchnorm_backward_alt": "03_backward_pass"}
GRADE_IDS = list(NOTEBOOK_OF)


@pytest.mark.parametrize("grade_id", GRADE_IDS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_every_mistake_is_named_on_every_case(grade_id, seed):
    task = get(grade_id, NOTEBOOK_OF[grade_id])
    for case in task.cases(seed):
        assert evaluate(task, case, run_case(task, task.reference, case)).passed
        for m in task.mistakes:
            verdict = evaluate(task, case, run_case(task, m.impl, case))
            assert (verdict.passed, verdict.mistake) == (False, m.name), (case.label, verdict)


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_cases_use_random_parameters_and_upstream_gradients(grade_id):
    for case in get(grade_id, NOTEBOOK_OF[grade_id]).cases(0):
        gamma = case.inputs["gamma"]
        assert not np.allclose(gamma, 1.0) and not np.allclose(case.inputs["beta"], 0.0)
        if "dout" in case.inputs:
            assert not np.allclose(case.inputs["dout"], case.inputs["dout"].flat[0])


def test_forward_task_names_in_place_mutation_of_x():
    def forward_in_place(x, gamma, beta, bn_param):
        mu = x.mean(axis=0)
        x -= mu  # the mistake: the caller's x changes
        x /= np.sqrt((x**2).mean(axis=0) + bn_param.get("eps", 1e-5))
        return gamma * x + beta, {}

    task = get("batchnorm_forward", "02_forward_pass")
    for case in task.cases(0):
        verdict = evaluate(task, case, run_case(task, (forward_in_place,), case))
        assert verdict.mistake == "mutates_input" and "`x`" in verdict.message


def test_forward_task_accepts_any_cache_and_updates_to_bn_param():
    def forward_small_cache(x, gamma, beta, bn_param):
        out, cache = batchnorm_forward(x, gamma, beta, bn_param)
        return out, {"x_hat": cache["x_hat"]}

    assert check("batchnorm_forward", forward_small_cache, notebook="02_forward_pass")


def test_forward_task_explains_a_missing_cache(capsys):
    def forward_out_only(x, gamma, beta, bn_param):
        return batchnorm_forward(x, gamma, beta, bn_param)[0]

    assert not check("batchnorm_forward", forward_out_only, notebook="02_forward_pass")
    assert "must return the pair (out, cache)" in capsys.readouterr().out


@pytest.mark.parametrize("grade_id", ["batchnorm_backward", "batchnorm_backward_alt"])
def test_backward_check_names_a_missing_mu_path(grade_id, capsys):
    assert not check(grade_id, tasks03._no_mu_path)
    out = capsys.readouterr().out
    assert "path through the mean" in out and "✓" not in out


@pytest.mark.parametrize("grade_id", GRADE_IDS)
def test_check_is_green_for_the_reference(grade_id, capsys):
    assert check(grade_id, *get(grade_id, NOTEBOOK_OF[grade_id]).reference,
                 notebook=NOTEBOOK_OF[grade_id])
    assert "All 3 cases pass" in capsys.readouterr().out
