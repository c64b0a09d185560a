"""The MLP: gradients with and without BN, and which parameters it trains."""

import numpy as np
import pytest

from course import layers
from course.gradcheck import numerical_gradient, rel_error
from course.mlp import MLP


@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_mlp_gradients_match_numerical_gradients(batchnorm, activation):
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(6, 5)), rng.integers(0, 3, 6)
    net = MLP([5, 7, 4, 3], activation=activation, batchnorm=batchnorm, seed=1)
    for bn in net.bn:  # non-trivial gamma/beta, so their gradients are exercised
        if bn is not None:
            bn.gamma[:] = rng.normal(1, 0.3, bn.gamma.shape)
            bn.beta[:] = rng.normal(0, 0.3, bn.beta.shape)
    _, dscores = layers.softmax_loss(net.forward(X), y)
    net.backward(dscores)
    for name, value, grad in net.params():
        original = value.copy()

        def loss_at(v, value=value):
            value[...] = v
            return layers.softmax_loss(net.forward(X), y)[0]

        num = numerical_gradient(loss_at, original.copy())
        value[...] = original  # leave the network as it was for the next parameter
        assert rel_error(grad, num) < 1e-7, name


def test_bias_before_bn_is_not_a_trained_parameter():
    names = [n for n, _, _ in MLP([4, 3, 2], batchnorm=True).params()]
    assert names == ["W0", "bn0.gamma", "bn0.beta", "W1", "b1"]
