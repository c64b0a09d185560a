"""course.batch_renorm and the BatchRenorm1d layer."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course.batch_renorm import batch_renorm_backward, batch_renorm_forward
from course.batchnorm import batchnorm_forward
from course.gradcheck import numerical_gradient_array, rel_error
from course.mlp import MLP
from course.norm_layers import BatchRenorm1d


def _inputs(seed, N=6, D=4, var_scale=1.0, shift=0.5):
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 2.0, (N, D))  # (N, D)
    gamma, beta = rng.normal(1.0, 0.5, D), rng.normal(size=D)  # (D,)
    bn_param = {"running_mean": x.mean(0) + shift * rng.normal(size=D),
                "running_var": x.var(0) * var_scale * rng.uniform(0.5, 2.0, D)}
    return x, gamma, beta, bn_param, rng.normal(size=(N, D))


@pytest.mark.parametrize("seed", range(4))
def test_without_room_to_correct_it_is_batch_norm(seed):
    x, gamma, beta, p, _ = _inputs(seed, var_scale=10.0, shift=5.0)
    brn, q = {**p, "r_max": 1.0, "d_max": 0.0}, dict(p)
    out, _ = batch_renorm_forward(x, gamma, beta, brn)
    ref, _ = batchnorm_forward(x, gamma, beta, q)
    np.testing.assert_allclose(out, ref, rtol=1e-14, atol=1e-15)  # r = 1, d = 0: rounding only
    np.testing.assert_array_equal(brn["running_var"], q["running_var"])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6), st.floats(0.01, 100.0), st.floats(0.0, 20.0),
       st.floats(1.0, 5.0), st.floats(0.0, 5.0))
def test_r_and_d_stay_within_their_clipping_ranges(seed, var_scale, shift, r_max, d_max):
    x, gamma, beta, p, _ = _inputs(seed, var_scale=var_scale, shift=shift)
    _, cache = batch_renorm_forward(x, gamma, beta, {**p, "r_max": r_max, "d_max": d_max})
    assert np.all(cache["r"] >= 1 / r_max - 1e-12) and np.all(cache["r"] <= r_max + 1e-12)
    assert np.all(np.abs(cache["d"]) <= d_max + 1e-12)


def test_unclipped_output_is_normalised_with_the_running_statistics():
    """With r and d free, x_hat = (x - mu) / sigma: the running statistics, not the batch's."""
    x, gamma, beta, p, _ = _inputs(7)
    out, _ = batch_renorm_forward(x, gamma, beta, {**p, "r_max": 1e9, "d_max": 1e9})
    sigma = np.sqrt(p["running_var"] + 1e-5)
    np.testing.assert_allclose(out, gamma * (x - p["running_mean"]) / sigma + beta)


def test_test_mode_is_batch_norm_test_mode():
    x, gamma, beta, p, _ = _inputs(8)
    out, _ = batch_renorm_forward(x, gamma, beta, {**p, "mode": "test"})
    ref, _ = batchnorm_forward(x, gamma, beta, {**p, "mode": "test"})
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("seed, var_scale, shift", [(0, 1.0, 0.2), (1, 30.0, 10.0)])
def test_backward_treats_r_and_d_as_constants(seed, var_scale, shift):
    x, gamma, beta, p, dout = _inputs(seed, var_scale=var_scale, shift=shift)
    _, cache = batch_renorm_forward(x, gamma, beta, dict(p))
    dx, dgamma, dbeta = batch_renorm_backward(dout, cache)
    r, d = cache["r"], cache["d"]

    def frozen(v, g=gamma):  # the forward with this batch's r and d held fixed
        return g * ((v - v.mean(0)) / np.sqrt(v.var(0) + 1e-5) * r + d) + beta
    assert rel_error(dx, numerical_gradient_array(frozen, x.copy(), dout)) < 1e-7
    assert rel_error(dgamma, numerical_gradient_array(lambda g: frozen(x, g), gamma.copy(),
                                                      dout)) < 1e-7
    np.testing.assert_allclose(dbeta, dout.sum(0))


def test_layer_in_a_network_trains_and_keeps_the_limits():
    m = MLP((5, 4, 3), batchnorm=True, norm=lambda D, momentum: BatchRenorm1d(
        D, r_max=2.0, d_max=1.0, momentum=momentum))
    layer = m.bn[0]
    assert isinstance(layer, BatchRenorm1d) and layer.bn_param()["r_max"] == 2.0
    x = np.random.default_rng(0).normal(3.0, 1.0, (8, 5))
    m.forward(x)
    m.backward(np.ones((8, 3)))
    assert layer.dgamma.shape == (4,) and not np.allclose(layer.running_mean, 0.0)


def test_a_forward_that_ignores_frozen_still_leaves_the_buffers_alone():
    # A student's forward written to the exercise updates the running statistics whenever it
    # runs in train mode; predicting with batch statistics (frozen) must not move them anyway.
    from course.small_batches import renorm_layer

    def eager(x, gamma, beta, bn_param):
        out, cache = batch_renorm_forward(x, gamma, beta, {**bn_param, "frozen": False})
        bn_param["running_mean"] = x.mean(axis=0)  # in the student's own way
        return out, cache

    rng = np.random.default_rng(0)
    layer = renorm_layer(eager)(3)
    layer.frozen = True
    x = rng.normal(2.0, 3.0, (6, 3))
    out = layer.forward(x)
    np.testing.assert_array_equal(layer.running_mean, np.zeros(3))
    layer.frozen = False
    np.testing.assert_allclose(layer.forward(x), out)  # same output, now with buffers updated
    np.testing.assert_allclose(layer.running_mean, x.mean(axis=0))


def test_a_layer_with_the_reference_forward_equals_batchrenorm1d():
    from course.small_batches import renorm_layer

    rng = np.random.default_rng(1)
    a, b = renorm_layer()(4), BatchRenorm1d(4)
    for _ in range(3):
        x, dout = rng.normal(1.0, 2.0, (8, 4)), rng.normal(size=(8, 4))
        np.testing.assert_allclose(a.forward(x), b.forward(x))
        np.testing.assert_allclose(a.backward(dout), b.backward(dout))
    np.testing.assert_allclose(a.running_var, b.running_var)


def test_the_small_batch_claims_hold_at_equal_epochs():
    from course.claims import assert_all_hold
    from course.small_batches import claims, compare

    assert_all_hold(claims(compare()))
