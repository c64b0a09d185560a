"""course.residual: the residual MLP's gradients, and blocks that start as the identity (γ = 0)."""

import numpy as np

from course.claims import assert_all_hold
from course.gradcheck import numerical_gradient, rel_error
from course.layers import softmax_loss
from course.residual import ResidualMLP, claims, depth_sweep


def _net(zero_gamma):
    m = ResidualMLP(2, width=5, d_in=4, classes=3, zero_gamma=zero_gamma, seed=3)
    rng = np.random.default_rng(0)
    for bn in m.bn:  # non-trivial gamma/beta (also away from 0 for the zero-gamma net's check)
        bn.gamma[:] = rng.uniform(0.5, 1.5, bn.gamma.shape)
        bn.beta[:] = rng.normal(0, 0.3, bn.beta.shape)
    return m


def test_backward_matches_numerical_gradients_of_every_parameter():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(8, 4)), rng.integers(0, 3, 8)
    m = _net(False)

    def loss(_):
        return softmax_loss(m.forward(X), y)[0]

    _, dscores = softmax_loss(m.forward(X), y)
    dX = m.backward(dscores)
    for name, value, grad in m.params():
        assert rel_error(grad, numerical_gradient(loss, value)) < 1e-7, name
    Xc = X.copy()
    assert rel_error(dX, numerical_gradient(lambda v: softmax_loss(m.forward(v), y)[0], Xc)) < 1e-7


def test_zero_gamma_blocks_start_as_the_identity():
    m = ResidualMLP(3, width=6, d_in=4, classes=3, zero_gamma=True, seed=0)
    X = np.random.default_rng(2).normal(size=(10, 4))
    h = np.maximum(X @ m.W_in + m.b_in, 0)
    assert np.allclose(m.forward(X), h @ m.W_out + m.b_out)


def test_the_zero_gamma_claims_hold_with_their_horizon():
    r = depth_sweep()  # the notebook's set-up: 2 and 16 blocks, 3 seeds, 3 epochs
    assert r[True].shape == (3, 2, 3)
    assert_all_hold(claims(r))
