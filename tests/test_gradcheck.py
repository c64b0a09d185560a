"""Numerical gradients and the relative error used by every gradient check."""

import numpy as np
import pytest

from course.gradcheck import numerical_gradient, rel_error


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
