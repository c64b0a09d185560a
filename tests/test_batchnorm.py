"""The reference batch normalization: invariants, gradients, exact values, clear errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from course.batchnorm import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward
from course.gradcheck import numerical_gradient_array, rel_error

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def batches(min_n=2, max_n=12, max_d=6):
    """(N, D) float64 batches whose every feature has a clearly non-zero spread."""
    shape = st.tuples(st.integers(min_n, max_n), st.integers(1, max_d))
    return shape.flatmap(lambda s: arrays(np.float64, s, elements=finite)).filter(
        lambda x: np.all(x.std(axis=0) > 1e-2))


def random_problem(seed, N=8, D=5):
    rng = np.random.default_rng(seed)
    x = rng.normal(1.5, 2.0, (N, D))
    gamma, beta = rng.normal(1.0, 0.5, D), rng.normal(0.0, 1.0, D)
    dout = rng.normal(size=(N, D))  # never all ones: that hides wrong dx (see notebook 03)
    return x, gamma, beta, dout


@given(batches())
def test_output_before_gamma_beta_has_zero_mean_unit_variance(x):
    out, _ = batchnorm_forward(x, np.ones(x.shape[1]), np.zeros(x.shape[1]), {"eps": 0.0})
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-7)
    np.testing.assert_allclose(out.var(axis=0), 1, rtol=1e-6)


@given(batches(), st.floats(0.1, 10), st.floats(-100, 100))
def test_invariant_to_positive_affine_change_of_input(x, a, b):
    gamma, beta = np.linspace(0.5, 2, x.shape[1]), np.linspace(-1, 1, x.shape[1])
    out1, _ = batchnorm_forward(x, gamma, beta, {"eps": 0.0})
    out2, _ = batchnorm_forward(a * x + b, gamma, beta, {"eps": 0.0})
    np.testing.assert_allclose(out1, out2, atol=1e-6)


@given(batches(), st.integers(0, 2**32 - 1))
def test_dx_sums_to_zero_and_is_orthogonal_to_x_hat(x, seed):
    rng = np.random.default_rng(seed)
    gamma, dout = rng.normal(size=x.shape[1]), rng.normal(size=x.shape)
    # eps = 0: with eps > 0, sum(x_hat**2) = N var / (var + eps) and the second identity is
    # off by a term of order eps / var.
    _, cache = batchnorm_forward(x, gamma, np.zeros(x.shape[1]), {"eps": 0.0})
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        dx, _, _ = backward(dout, cache)
        scale = np.abs(dx).max() + 1
        np.testing.assert_allclose(dx.sum(axis=0) / scale, 0, atol=1e-9)
        np.testing.assert_allclose((dx * cache["x_hat"]).sum(axis=0) / scale, 0, atol=1e-9)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_alt])
def test_backward_matches_numerical_gradient(seed, backward):
    x, gamma, beta, dout = random_problem(seed)
    _, cache = batchnorm_forward(x, gamma, beta, {})
    dx, dgamma, dbeta = backward(dout, cache)

    def fwd(x_=x, g=gamma, b=beta):
        return batchnorm_forward(x_, g, b, {})[0]

    num = numerical_gradient_array
    assert rel_error(dx, num(lambda v: fwd(x_=v), x.copy(), dout)) < 1e-8
    assert rel_error(dgamma, num(lambda v: fwd(g=v), gamma.copy(), dout)) < 1e-8
    assert rel_error(dbeta, num(lambda v: fwd(b=v), beta.copy(), dout)) < 1e-8


def test_staged_and_closed_form_backward_agree():
    x, gamma, beta, dout = random_problem(7, N=32, D=9)
    _, cache = batchnorm_forward(x, gamma, beta, {})
    staged, closed = batchnorm_backward(dout, cache), batchnorm_backward_alt(dout, cache)
    for a, b in zip(staged, closed, strict=True):
        assert rel_error(a, b) < 1e-12


def test_exact_values_on_a_hand_computed_batch():
    # Column 0: mean 2, biased variance 1 -> x_hat = [-1, 1]. Column 1: mean 0, var 4 -> [-1, 1].
    x = np.array([[1.0, -2.0], [3.0, 2.0]])
    bn_param = {"eps": 0.0, "momentum": 0.9}
    out, _ = batchnorm_forward(x, np.array([2.0, 0.5]), np.array([1.0, -1.0]), bn_param)
    np.testing.assert_array_equal(out, [[-1.0, -1.5], [3.0, -0.5]])
    # running = 0.9 * initial + 0.1 * batch statistic
    np.testing.assert_allclose(bn_param["running_mean"], [0.2, 0.0])
    np.testing.assert_allclose(bn_param["running_var"], [0.9 * 1 + 0.1 * 1, 0.9 * 1 + 0.1 * 4])


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
