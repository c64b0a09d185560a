"""course.ablations: the BN variants' forward/backward, and the effects the experiments show."""

import numpy as np
import pytest

from course.ablations import (
    CHANCE_LOSS,
    VARIANTS,
    ablation,
    ablation_claims,
    center_backward,
    center_forward,
    fastest_lr,
    largest_stable_lr,
    lr_claims,
    lr_grid,
    outcome,
    regulariser_claims,
    regularisers,
    scale_backward,
    scale_forward,
    stable,
    steps_to_loss,
)
from course.claims import assert_all_hold
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


def test_outcome_separates_diverged_from_slow():
    assert outcome(History(loss=[np.nan] * 10)) == "diverged"
    assert outcome(History(loss=[CHANCE_LOSS + 0.1] * 10)) == "diverged"  # learned nothing
    assert outcome(History(loss=[1.5] * 10)) == "slow"
    assert outcome(History(loss=[0.5] * 10)) == "stable"


def test_largest_stable_and_fastest_lr_read_the_grid_per_seed():
    ok, slow, nan = History(loss=[0.3] * 10), History(loss=[1.5] * 10), History(loss=[np.nan] * 10)
    runs = {(True, 0.1): [ok, ok], (True, 1.0): [ok, slow], (True, 3.0): [nan, ok],
            (False, 0.1): [slow, slow]}
    best = largest_stable_lr(runs)
    assert best[True].tolist() == [1.0, 3.0] and best[False].tolist() == [0.0, 0.0]
    steps = {(True, 0.1): np.array([30.0, 40.0]), (True, 1.0): np.array([20.0, np.inf])}
    assert fastest_lr(steps, True) == 0.1  # a seed that never gets there rules a rate out


def test_the_learning_rate_claims_hold():
    # The notebook's claims, with their thresholds, stated once in course.ablations.lr_claims.
    assert_all_hold(lr_claims(lr_grid()))


def test_the_ablation_claims_hold():
    assert_all_hold(ablation_claims(ablation()))


def test_the_regulariser_claim_holds():
    assert_all_hold(regulariser_claims(regularisers()))
