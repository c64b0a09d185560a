"""The optimizer."""

import numpy as np

from course.optim import SGD


def test_sgd_with_momentum_minimises_a_quadratic():
    w = np.array([3.0, -2.0])
    opt = SGD(0.1, 0.9)
    for _ in range(300):
        opt.step([("w", w, 2 * (w - 1.0))])
    np.testing.assert_allclose(w, 1.0, atol=1e-2)
