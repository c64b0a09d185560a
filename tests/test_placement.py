"""The placement model: gradients are right for every layout, dropout and the variance shift."""

import numpy as np
import pytest

from course.gradcheck import numerical_gradient, rel_error
from course.layers import softmax_loss
from course.mlp import MLP
from course.placement import PLACEMENTS, PlacementMLP, variance_shift


@pytest.mark.parametrize("name", list(PLACEMENTS))
def test_gradients_of_every_layout_match_numerical_ones(name):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(7, 5)), rng.integers(0, 3, 7)
    model = PlacementMLP([5, 6, 4, 3], PLACEMENTS[name](2), p_drop=0.3, seed=1)
    for bn in model.bn:
        if bn is not None:
            bn.gamma, bn.beta = rng.normal(1, 0.5, bn.gamma.shape), rng.normal(size=bn.beta.shape)

    def loss():
        model.rng = np.random.default_rng(5)  # the same dropout masks on every call
        return softmax_loss(model.forward(X), y)[0]

    model.rng = np.random.default_rng(5)
    model.backward(softmax_loss(model.forward(X), y)[1])
    for pname, value, grad in model.params():
        num = numerical_gradient(lambda _: loss(), value)
        assert rel_error(grad, num) < 1e-8, pname


def test_bias_before_bn_is_not_trained_but_other_biases_are():
    names = [n for n, _, _ in PlacementMLP([4, 3, 3, 2], PLACEMENTS["ReLU -> BN"](2)).params()]
    assert "b0" in names and "bn0.gamma" in names
    names = [n for n, _, _ in PlacementMLP([4, 3, 3, 2], PLACEMENTS["BN -> ReLU"](2)).params()]
    assert "b0" not in names and "b1" not in names and "b2" in names


def test_variance_shift_appears_when_dropout_feeds_bn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6))
    ratios = {}
    for name in ("BN -> ReLU", "BN -> ReLU -> dropout, every block"):
        model = PlacementMLP([6, 20, 20, 3], PLACEMENTS[name](2), p_drop=0.5, seed=0)
        for bn in model.bn:
            bn.momentum = 0.0  # running statistics = the statistics of the last training batch
        model.train().forward(X)
        ratios[name] = variance_shift(model, X)
    np.testing.assert_allclose(ratios["BN -> ReLU"], 1.0, rtol=1e-3)  # same X: no shift at all
    assert ratios["BN -> ReLU -> dropout, every block"][1] < 0.8  # dropout inflated train variance


def test_wrong_number_of_blocks_is_refused():
    with pytest.raises(ValueError):
        PlacementMLP([4, 3, 2], PLACEMENTS["BN -> ReLU"](2))


def test_an_unknown_op_or_activation_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown ops \\['gelu'\\]"):
        PlacementMLP([4, 3, 2], [("bn", "gelu")])
    with pytest.raises(ValueError, match="activation must be one of .*'tanh'"):
        MLP([4, 3, 2], activation="tanh")


def test_the_placement_claims_hold_with_the_recalibration_control():
    from course.claims import assert_all_hold
    from course.placement import claims, compare_layouts

    r = compare_layouts(seeds=range(5))
    assert set(r) == set(PLACEMENTS)
    assert_all_hold(claims(r))
