"""course.scale_invariance: BN after a layer makes the loss blind to the scale of its weights,
the gradient orthogonal to them, and weight decay what sets the effective learning rate."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from course.experiments import digits
from course.gradcheck import numerical_gradient, rel_error
from course.scale_invariance import loss_and_grad, norm_grid, readout, scale_identities, sgd_norms


def _problem(seed, N=16, D=64, H=8):
    d, rng = digits(), np.random.default_rng(seed)
    idx = rng.choice(len(d.X_train), N, replace=False)
    return rng.normal(size=(D, H)), d.X_train[idx], d.y_train[idx], readout(H, seed=seed)


def test_gradient_matches_a_numerical_gradient():
    W, X, y, V = _problem(0, D=64, H=4)
    _, g = loss_and_grad(W, X, y, V)
    num = numerical_gradient(lambda w: loss_and_grad(w, X, y, V)[0], W.copy())
    assert rel_error(g, num) < 1e-6


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10**6), st.floats(0.01, 100.0))
def test_scaling_w_leaves_bn_unchanged_and_divides_the_gradient(seed, a):
    W, X, y, V = _problem(seed)
    diff, ratio, cosine = scale_identities(W, X, y, V, a, eps=0.0)
    assert diff < 1e-9
    assert abs(ratio - 1 / a) < 1e-8 / a  # dL/d(aW) = dL/dW / a
    assert abs(cosine) < 1e-10  # sum(W * dL/dW) = 0: the gradient is orthogonal to W


def test_eps_breaks_the_invariance_only_slightly():
    W, X, y, V = _problem(1)
    diff, ratio, cosine = scale_identities(W / 100, X, y, V, 10.0, eps=1e-5)
    assert 0 < abs(cosine) < 1e-3 and diff > 1e-9 and abs(ratio - 0.1) < 1e-3


def test_without_weight_decay_the_norm_only_grows():
    norms, eff = sgd_norms(0.5, 0.0, steps=60)
    assert norms[0] == 1.0 and np.all(np.diff(norms) > -1e-9)  # ||W||^2 gains lr^2 ||g||^2
    np.testing.assert_allclose(eff, 0.5 / norms**2)
    assert np.all(np.diff(eff) < 1e-9)


def test_with_weight_decay_the_norm_settles_below_and_the_effective_rate_above():
    grid = norm_grid()
    for lr in (0.2, 0.5, 1.0):
        plain, decayed = grid[lr, 0.0], grid[lr, 0.03]
        assert decayed[0][-1] < plain[0][-1] and decayed[1][-1] > plain[1][-1]
        tail = decayed[0][-50:]  # the last 50 steps: no more trend than noise
        assert tail.max() / tail.min() < 1.1


def test_the_scale_invariance_claims_hold():
    from course.claims import assert_all_hold
    from course.experiments import digits
    from course.scale_invariance import claims, identities, norm_runs, readout

    d = digits()
    W0 = np.random.default_rng(0).normal(size=(64, 32))
    assert_all_hold(claims(identities(W0, d.X_train[:64], d.y_train[:64], readout(32)),
                           norm_runs()))
