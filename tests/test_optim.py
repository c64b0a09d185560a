"""The optimizer."""

import numpy as np

from course.optim import SGD


def test_sgd_with_momentum_minimises_a_quadratic():
    w = np.array([3.0, -2.0])
    opt = SGD(0.1, 0.9)
    for _ in range(300):
        opt.step([("w", w, 2 * (w - 1.0))])
    np.testing.assert_allclose(w, 1.0, atol=1e-2)


def test_weight_decay_adds_its_multiple_of_the_value_to_the_gradient():
    value, grad = np.array([2.0, -1.0]), np.array([0.5, 0.5])
    opt = SGD(lr=0.1, momentum=0.0, weight_decay=0.2)
    opt.step([("W0", value, grad)])
    np.testing.assert_allclose(value, [2.0 - 0.1 * (0.5 + 0.4), -1.0 - 0.1 * (0.5 - 0.2)])
    plain = np.array([2.0, -1.0])
    SGD(lr=0.1, momentum=0.0).step([("W0", plain, grad)])
    np.testing.assert_allclose(plain, [1.95, -1.05])  # weight_decay=0: the update as before
