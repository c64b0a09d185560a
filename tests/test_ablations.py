"""course.ablations: the BN variants' forward/backward, and the effects the experiments show."""

import numpy as np
import pytest

from course.ablations import (
    VARIANTS,
    ablation,
    center_backward,
    center_forward,
    largest_stable_lr,
    scale_backward,
    scale_forward,
    stable,
    steps_to_loss,
)
from course.gradcheck import numerical_gradient_array, rel_error
from course.train import History

PAIRS = [(center_forward, center_backward), (scale_forward, scale_backward)]


@pytest.mark.parametrize("forward, backward", PAIRS, ids=["center", "scale"])
@pytest.mark.parametrize("mode", ["train", "test"])
def test_backward_matches_numerical_gradients(forward, backward, mode):
    rng = np.random.default_rng(0)
    x, dout = rng.normal(2.0, 3.0, (6, 4)), rng.normal(size=(6, 4))
    gamma, beta = rng.normal(1.0, 0.5, 4), rng.normal(size=4)
    p = {"mode": mode, "running_mean": rng.normal(size=4), "running_var": rng.uniform(1, 2, 4)}

    def f(v, g=gamma, b=beta):
        return forward(v, g, b, dict(p))[0]
    _, cache = forward(x, gamma, beta, dict(p))
    dx, dgamma, dbeta = backward(dout, cache)
    assert rel_error(dx, numerical_gradient_array(f, x.copy(), dout)) < 1e-7
    assert rel_error(dgamma, numerical_gradient_array(lambda g: f(x, g), gamma.copy(), dout)) < 1e-7
    np.testing.assert_allclose(dbeta, dout.sum(axis=0))


def test_each_variant_removes_what_it_says():
    rng = np.random.default_rng(1)
    x = rng.normal(5.0, 3.0, (50, 3))
    ones, zeros = np.ones(3), np.zeros(3)
    centred, _ = center_forward(x, ones, zeros, {})
    scaled, _ = scale_forward(x, ones, zeros, {"eps": 0.0})
    np.testing.assert_allclose(centred.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(centred.std(0), x.std(0))  # the scale is untouched
    np.testing.assert_allclose(scaled.std(0), 1.0)
    np.testing.assert_allclose(scaled.mean(0), x.mean(0) / x.std(0))  # the mean is only rescaled


def test_the_variants_differ_where_they_should():
    models = {name: make(0) for name, make in VARIANTS.items()}
    assert models["γ, β frozen at (1, 0)"].params() != models["full BN"].params()
    n_bn = {name: sum(b is not None for b in m.bn) for name, m in models.items()}
    assert n_bn["BN in the first layer only"] == 1 and n_bn["no BN"] == 0
    assert n_bn["full BN"] == 6
    frozen = {n for n, _, _ in models["γ, β frozen at (1, 0)"].params()}
    assert not any("gamma" in n or "beta" in n for n in frozen)


def test_stable_and_steps_to_loss_exact_values():
    h = History(loss=[2.3] * 5 + [0.4] * 20)
    assert stable(h) and not stable(History(loss=[np.nan] * 10))
    assert not stable(History(loss=[2.3] * 10))
    assert steps_to_loss(h, target=0.5, window=10) == 15.0  # steps 6-15 (from 1) are all 0.4
    assert steps_to_loss(History(loss=[1.0] * 30)) == np.inf


def test_bn_is_stable_at_larger_learning_rates_on_every_seed():
    best = largest_stable_lr((0.03, 0.1, 0.3, 1.0))
    assert best[True].min() > best[False].max()


def test_full_bn_beats_no_bn_and_mean_subtraction_alone_is_not_enough():
    acc = ablation()
    assert acc["full BN"].min() > acc["no BN"].max()
    assert acc["variance scaling only"].mean() > acc["mean subtraction only"].mean()
