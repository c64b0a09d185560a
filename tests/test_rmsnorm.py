"""course.rmsnorm: forward, backward, and how RMSNorm relates to LayerNorm."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from course.gradcheck import numerical_gradient_array, rel_error
from course.norms import layernorm_forward
from course.rmsnorm import rmsnorm_backward, rmsnorm_forward
from course.tasks.base import random_gamma_beta


def _batch(N, D, seed, mean=1.0):
    rng = np.random.default_rng(seed)
    gamma, _ = random_gamma_beta(rng, D)  # (D,)
    return rng.normal(mean, 2.0, (N, D)), gamma, rng.normal(size=(N, D))


# (x, gamma, dout) of N in [1, 6] examples with D in [2, 7] features
batches = st.tuples(st.integers(1, 6), st.integers(2, 7), st.integers(0, 10**6)).map(
    lambda dims: _batch(*dims))


def _over_batches(*strategies):
    """A property of random batches (then of `strategies`), on fewer examples than the default."""
    return lambda test: settings(max_examples=25, deadline=None)(given(batches, *strategies)(test))


@_over_batches()
def test_backward_matches_numerical_gradients(batch):
    x, gamma, dout = batch
    out, cache = rmsnorm_forward(x, gamma, {})
    dx, dgamma = rmsnorm_backward(dout, cache)
    num_dx = numerical_gradient_array(lambda v: rmsnorm_forward(v, gamma, {})[0], x.copy(), dout)
    num_dg = numerical_gradient_array(lambda g: rmsnorm_forward(x, g, {})[0], gamma.copy(), dout)
    assert rel_error(dx, num_dx) < 1e-7 and rel_error(dgamma, num_dg) < 1e-7


@_over_batches(st.floats(0.01, 100.0))
def test_scale_invariant_per_example_without_eps(batch, c):
    x, gamma, _ = batch
    scales = c * np.arange(1, len(x) + 1)[:, None]  # (N, 1) a different positive scale per row
    a, _ = rmsnorm_forward(x, gamma, {"eps": 0.0})
    b, _ = rmsnorm_forward(scales * x, gamma, {"eps": 0.0})
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@_over_batches()
def test_equals_layernorm_without_beta_on_zero_mean_rows_only(batch):
    x, gamma, _ = batch
    centred = x - x.mean(axis=1, keepdims=True)  # (N, D) every example has mean zero
    ln, _ = layernorm_forward(centred, gamma, np.zeros_like(gamma), {})
    rms, _ = rmsnorm_forward(centred, gamma, {})
    np.testing.assert_allclose(rms, ln, rtol=1e-10, atol=1e-10)
    shifted = centred + 5.0  # a large common offset: RMSNorm keeps it, LayerNorm removes it
    assert not np.allclose(rmsnorm_forward(shifted, gamma, {})[0],
                           layernorm_forward(shifted, gamma, np.zeros_like(gamma), {})[0])


def test_exact_values_and_unit_rms_output():
    out, _ = rmsnorm_forward(np.array([[3.0, 4.0]]), np.array([1.0, 2.0]), {"eps": 0.0})
    rms = np.sqrt((9 + 16) / 2)
    np.testing.assert_allclose(out, [[3 / rms, 8 / rms]])
    x, _, _ = _batch(5, 6, 1)
    x_hat, _ = rmsnorm_forward(x, np.ones(6), {"eps": 0.0})
    np.testing.assert_allclose(np.mean(x_hat**2, axis=1), 1.0)


def test_dx_is_orthogonal_to_x_per_example_without_eps():
    """Scaling an example does not change the output, so moving x along itself changes nothing:
    sum over features of dx * x is zero for every example."""
    x, gamma, dout = _batch(4, 5, 2)
    _, cache = rmsnorm_forward(x, gamma, {"eps": 0.0})
    dx, _ = rmsnorm_backward(dout, cache)
    np.testing.assert_allclose((dx * x).sum(axis=1), 0.0, atol=1e-12)


def test_the_layernorm_comparison_claims_hold():
    from course.claims import assert_all_hold
    from course.rmsnorm import claims, layernorm_gap

    assert_all_hold(claims(layernorm_gap()))
