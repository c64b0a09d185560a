"""The reference batch normalization: invariants, gradients, exact values, notebook 02-03 claims,
clear errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course.batchnorm import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_backward_staged,
    batchnorm_forward,
    tiny_batch,
)
from course.gradcheck import numerical_gradient_array, rel_error
from course.tasks import random_gamma_beta

BACKWARDS = [batchnorm_backward, batchnorm_backward_alt]

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def batches(min_n=2, max_n=12, max_d=6):
    """(N, D) float64 batches whose every feature has a clearly non-zero spread."""
    shape = st.tuples(st.integers(min_n, max_n), st.integers(1, max_d))
    return shape.flatmap(lambda s: arrays(np.float64, s, elements=finite)).filter(
        lambda x: np.all(x.std(axis=0) > 1e-2))


def random_problem(seed, N=8, D=5):
    """x, non-trivial gamma (some negative) and beta, and a random dout."""
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 3.0, (N, D))  # (N, D)
    gamma, beta = random_gamma_beta(rng, D)  # (D,), (D,)
    dout = rng.normal(0.0, 1.0, (N, D))  # never all ones: that hides wrong dx (see notebook 03)
    return x, gamma, beta, dout


def _out(x, gamma, beta, eps=1e-5):
    return batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})[0]


# ---------------------------------------------------------------- properties

@given(batches())
def test_output_before_gamma_beta_has_zero_mean_unit_variance(x):
    D = x.shape[1]
    out, _ = batchnorm_forward(x, np.ones(D), np.zeros(D), {"eps": 0.0})
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-7)
    np.testing.assert_allclose(out.var(axis=0), 1, rtol=1e-6)
    # Not exactly 1 with eps: eps inside the root shrinks it to var / (var + eps).
    _, cache = batchnorm_forward(x, np.ones(D), np.zeros(D), {"mode": "train"})
    var = x.var(axis=0)
    np.testing.assert_allclose(cache["x_hat"].mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(cache["x_hat"].var(axis=0), var / (var + 1e-5), rtol=1e-9)


@given(batches(), st.floats(0.1, 10), st.floats(-100, 100), st.integers(0, 2**32 - 1))
def test_invariant_to_positive_affine_change_of_input(x, a, b, seed):
    gamma, beta = np.linspace(0.5, 2, x.shape[1]), np.linspace(-1, 1, x.shape[1])
    out1, _ = batchnorm_forward(x, gamma, beta, {"eps": 0.0})
    out2, _ = batchnorm_forward(a * x + b, gamma, beta, {"eps": 0.0})
    np.testing.assert_allclose(out1, out2, atol=1e-6)
    # With eps, exact too if eps scales with the variance (a**2).
    rng = np.random.default_rng(seed)
    gamma, beta = rng.normal(size=x.shape[1]), rng.normal(size=x.shape[1])
    np.testing.assert_allclose(_out(a * x + b, gamma, beta, eps=a**2 * 1e-5),
                               _out(x, gamma, beta), atol=1e-7)


@given(batches(), st.integers(0, 2**32 - 1))
def test_dx_sums_to_zero_and_is_orthogonal_to_x_hat(x, seed):
    N, D = x.shape
    rng = np.random.default_rng(seed)
    gamma, dout = rng.normal(size=D), rng.normal(size=x.shape)
    # eps = 0: exactly orthogonal.
    _, cache = batchnorm_forward(x, gamma, np.zeros(D), {"eps": 0.0})
    for backward in BACKWARDS:
        dx, _, _ = backward(dout, cache)
        scale = np.abs(dx).max() + 1
        np.testing.assert_allclose(dx.sum(axis=0) / scale, 0, atol=1e-9)
        np.testing.assert_allclose((dx * cache["x_hat"]).sum(axis=0) / scale, 0, atol=1e-9)
    # eps > 0 leaves a residue of relative size eps / (var + eps): scaling x does not scale eps.
    _, cache = batchnorm_forward(x, gamma, np.zeros(D), {"mode": "train"})
    x_hat, inv_std, var, eps = cache["x_hat"], cache["inv_std"], cache["var"], cache["eps"]
    residue = gamma * inv_std * eps / (var + eps) * (dout * x_hat).sum(axis=0)  # (D,)
    # The size dx would have without cancellations: gamma / std * |dout|, N terms.
    scale = N * np.abs(gamma * inv_std).max() * np.abs(dout).max()
    for backward in BACKWARDS:
        dx = backward(dout, cache)[0]
        np.testing.assert_allclose(dx.sum(axis=0) / scale, 0.0, atol=1e-10)
        np.testing.assert_allclose(((dx * x_hat).sum(axis=0) - residue) / scale, 0.0, atol=1e-9)


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("shape", [(8, 5), (4, 3), (10, 5), (3, 7)])
@pytest.mark.parametrize("backward", BACKWARDS)
def test_backward_matches_numerical_gradient(shape, backward):
    x, gamma, beta, dout = random_problem(sum(shape), *shape)
    _, cache = batchnorm_forward(x, gamma, beta, {})
    dx, dgamma, dbeta = backward(dout, cache)

    def fwd(x_=x, g=gamma, b=beta):
        return batchnorm_forward(x_, g, b, {})[0]

    num = numerical_gradient_array
    assert rel_error(dx, num(lambda v: fwd(x_=v), x.copy(), dout)) < 1e-8
    assert rel_error(dgamma, num(lambda v: fwd(g=v), gamma.copy(), dout)) < 1e-8
    assert rel_error(dbeta, num(lambda v: fwd(b=v), beta.copy(), dout)) < 1e-8


def test_staged_and_closed_form_backward_agree():
    x, gamma, beta, dout = random_problem(7, N=64, D=32)
    _, cache = batchnorm_forward(x, gamma, beta, {})
    staged, closed = batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache)
    for a, b in zip(staged, closed, strict=True):
        assert rel_error(a, b) < 1e-12


# ---------------------------------------------------------------- exact values, by hand

def test_exact_values_on_a_hand_computed_batch():
    # Column 0: mean 2, biased variance 1 -> x_hat = [-1, 1]. Column 1: mean 0, var 4 -> [-1, 1].
    x = np.array([[1.0, -2.0], [3.0, 2.0]])
    bn_param = {"eps": 0.0, "momentum": 0.9}
    out, cache = batchnorm_forward(x, np.array([2.0, 0.5]), np.array([1.0, -1.0]), bn_param)
    np.testing.assert_array_equal(cache["mu"], [2.0, 0.0])
    np.testing.assert_array_equal(cache["var"], [1.0, 4.0])
    np.testing.assert_array_equal(out, [[-1.0, -1.5], [3.0, -0.5]])
    # running = 0.9 * initial + 0.1 * batch statistic
    np.testing.assert_allclose(bn_param["running_mean"], [0.2, 0.0])
    np.testing.assert_allclose(bn_param["running_var"], [0.9 * 1 + 0.1 * 1, 0.9 * 1 + 0.1 * 4])


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
    x, gamma, beta, dout = random_problem(3, 2, 4)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": 0.0})
    np.testing.assert_allclose(np.abs(cache["x_hat"]), 1.0, rtol=1e-12)
    np.testing.assert_allclose(backward(dout, cache)[0], 0.0, atol=1e-12)


def test_test_mode_uses_running_statistics_with_eps_and_beta():
    x = np.array([[5.0], [7.0]])
    bn_param = {"mode": "test", "eps": 0.25, "running_mean": np.array([1.0]),
                "running_var": np.array([3.75])}
    out, _ = batchnorm_forward(x, np.array([2.0]), np.array([0.5]), bn_param)
    # (x - 1) / sqrt(3.75 + 0.25) * 2 + 0.5
    np.testing.assert_array_equal(out, [[4.5], [6.5]])
    np.testing.assert_array_equal(bn_param["running_mean"], [1.0])  # unchanged in test mode


def test_test_mode_output_does_not_depend_on_the_rest_of_the_batch():
    rng = np.random.default_rng(0)
    x, gamma, beta = rng.normal(size=(6, 3)), rng.normal(size=3), rng.normal(size=3)
    p = {"mode": "test", "running_mean": rng.normal(size=3), "running_var": rng.random(3) + 0.5}
    whole, _ = batchnorm_forward(x, gamma, beta, dict(p))
    one, _ = batchnorm_forward(x[:1], gamma, beta, dict(p))
    np.testing.assert_allclose(one, whole[:1], rtol=1e-15)


# ---------------------------------------------------------------- notebook 02 claims

def test_gamma_beta_can_undo_the_normalisation_exactly():
    x, *_ = random_problem(2, 16, 4)
    eps = 1e-5
    gamma, beta = np.sqrt(x.var(axis=0) + eps), x.mean(axis=0)
    np.testing.assert_allclose(_out(x, gamma, beta, eps), x, rtol=1e-12, atol=1e-12)


def test_output_mean_is_beta_and_std_is_gamma():
    x, gamma, beta, _ = random_problem(4, 200, 5)
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


# ---------------------------------------------------------------- contract

def test_inputs_are_not_modified():
    x, gamma, beta, _ = random_problem(3)
    copies = x.copy(), gamma.copy(), beta.copy()
    batchnorm_forward(x, gamma, beta, {})
    for a, b in zip((x, gamma, beta), copies, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("x, gamma, match", [
    (np.ones(4), np.ones(4), "shape \\(N, D\\)"),
    (np.ones((3, 4)), np.ones(3), "gamma must have shape \\(4,\\)"),
    (np.array([[1.0, np.nan], [2.0, 3.0]]), np.ones(2), "NaN or infinity"),
    (np.ones((1, 2)), np.ones(2), "at least 2 examples"),
])
def test_bad_input_raises_a_clear_value_error(x, gamma, match):
    with pytest.raises(ValueError, match=match):
        batchnorm_forward(x, gamma, np.zeros_like(gamma), {})


def test_unknown_mode_raises():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        batchnorm_forward(np.ones((2, 2)), np.ones(2), np.zeros(2), {"mode": "eval"})


def test_frozen_train_mode_normalises_with_the_batch_but_leaves_the_buffers():
    rng = np.random.default_rng(3)
    x, gamma, beta = rng.normal(2.0, 3.0, (6, 4)), rng.normal(1, 0.5, 4), rng.normal(size=4)
    rm, rv = rng.normal(size=4), rng.uniform(0.5, 2.0, 4)
    frozen = {"mode": "train", "frozen": True, "running_mean": rm, "running_var": rv}
    out, _ = batchnorm_forward(x, gamma, beta, frozen)
    want, _ = batchnorm_forward(x, gamma, beta, {"mode": "train", "running_mean": rm,
                                                 "running_var": rv})
    np.testing.assert_array_equal(out, want)
    assert frozen["running_mean"] is rm and frozen["running_var"] is rv
    # A batch of one is allowed when frozen: x - mean is exactly 0, so the output is beta.
    one, _ = batchnorm_forward(x[:1], gamma, beta, frozen)
    np.testing.assert_array_equal(one, beta[None])
    with pytest.raises(ValueError, match="at least 2"):
        batchnorm_forward(x[:1], gamma, beta, {"mode": "train"})


# --- the staged backward pass (notebook 03's walk) ----------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_staged_backward_ends_in_the_reference_gradients(seed):
    x, gamma, beta, dout = tiny_batch(N=4, D=3, seed=seed)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    grads, _ = batchnorm_backward_staged(dout, cache)
    for reference in (batchnorm_backward, batchnorm_backward_alt):
        dx, dgamma, dbeta = reference(dout, cache)
        np.testing.assert_allclose(grads["x"], dx, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(grads["gamma"], dgamma, rtol=1e-12)
        np.testing.assert_allclose(grads["beta"], dbeta, rtol=1e-12)
    for name, g in grads.items():  # the gradient has the shape of the node's value
        assert np.shape(g) == np.shape(cache.get(name, dout)), name


def test_staged_backward_walks_from_the_output_and_shows_the_paths_that_add():
    x, gamma, beta, dout = tiny_batch()
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    grads, paths = batchnorm_backward_staged(dout, cache)
    assert list(grads)[0] == "out" and list(grads)[-1] == "x"
    assert set(grads) == set(cache) - {"eps"} | {"gx", "out"}
    for name in ("xmu", "mu", "x"):
        parts = list(paths[name].values())
        assert len(parts) == 2
        np.testing.assert_allclose(parts[0] + parts[1], grads[name], rtol=1e-12)
    # The variance path adds nothing to dmu (the deviations sum to zero) but a lot to dxmu.
    np.testing.assert_allclose(paths["mu"]["via sq -> var"], 0.0, atol=1e-12)
    assert np.abs(paths["xmu"]["via sq -> var"]).max() > 0.1
    assert not np.allclose(dout, 1.0)
