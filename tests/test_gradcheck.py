"""Numerical gradients and the relative error used by every gradient check."""

import numpy as np
import pytest

from course.batchnorm import batchnorm_backward, batchnorm_forward
from course.gradcheck import numerical_gradient, numerical_gradient_array, rel_error, verdict
from course.tasks import random_gamma_beta


def test_rel_error_is_zero_for_equal_and_one_for_opposite_arrays():
    a = np.array([1.0, -2.0, 3.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(a, -a) == pytest.approx(1.0)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0


def test_numerical_gradient_of_a_quadratic_is_exact_and_restores_x():
    x = np.array([1.0, -2.0, 0.5])
    before = x.copy()
    g = numerical_gradient(lambda v: float(np.sum(v**2)), x)
    np.testing.assert_allclose(g, 2 * before, rtol=1e-9)
    np.testing.assert_array_equal(x, before)


def test_float32_gradient_check_is_far_less_accurate():
    # Notebook 03's hygiene point, on batch norm: float64 checks to 1e-8, float32 not to 1e-5.
    rng = np.random.default_rng(5)
    x = rng.normal(1.0, 3.0, (6, 3))  # (N, D)
    gamma, beta = random_gamma_beta(rng, 3)  # (D,), (D,)
    dout = rng.normal(0.0, 1.0, (6, 3))  # (N, D)

    def out(v, g, b):
        return batchnorm_forward(v, g, b, {"mode": "train"})[0]

    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx = batchnorm_backward(dout, cache)[0]
    x32, g32, b32, d32 = (a.astype(np.float32) for a in (x, gamma, beta, dout))
    num32 = numerical_gradient_array(lambda v: out(v, g32, b32), x32.copy(), d32, h=1e-3)
    num64 = numerical_gradient_array(lambda v: out(v, gamma, beta), x.copy(), dout)
    assert rel_error(dx, num64) < 1e-8 < 1e-5 < rel_error(dx, num32)


@pytest.mark.parametrize("err, word", [(0.0, "correct"), (9.9e-9, "correct"), (1e-8, "suspicious"),
                                       (9.9e-6, "suspicious"), (1e-5, "wrong"), (1.0, "wrong")])
def test_verdict_reads_rel_error_by_the_course_thresholds(err, word):
    assert verdict(err) == word


def test_layer_rel_errors_pass_a_right_backward_and_catch_a_wrong_one():
    from course.gradcheck import layer_rel_errors

    rng = np.random.default_rng(0)
    x, dout = rng.normal(2.0, 3.0, (6, 4)), rng.normal(size=(6, 4))
    gamma, beta = rng.normal(1.0, 0.5, 4), rng.normal(size=4)
    ok = layer_rel_errors(batchnorm_forward, batchnorm_backward, x, gamma, beta, {"mode": "train"},
                          dout)
    assert max(ok) < 1e-8

    def no_mean_path(d, cache):  # drops the -sum(dout) term of dx
        dx, dgamma, dbeta = batchnorm_backward(d, cache)
        return dx + (d * cache["gamma"]).mean(axis=0) * cache["inv_std"], dgamma, dbeta
    assert layer_rel_errors(batchnorm_forward, no_mean_path, x, gamma, beta, {"mode": "train"},
                            dout)[0] > 1e-3
