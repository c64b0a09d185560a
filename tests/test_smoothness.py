"""course.smoothness: the probe along the gradient leaves the model alone; BN's smoother loss."""

import numpy as np

from course.claims import assert_all_hold
from course.mlp import MLP
from course.smoothness import claims, compare, flat_loss_and_grad, probe


def test_probe_leaves_model_and_buffers_unchanged():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 6)), rng.integers(0, 3, 32)
    m = MLP((6, 5, 5, 3), batchnorm=True, seed=1)
    before = [v.copy() for _, v, _ in m.params()] + [m.bn[0].running_mean.copy()]
    out = probe(m, X, y, [0.1, 0.3])
    after = [v for _, v, _ in m.params()] + [m.bn[0].running_mean]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))  # bit for bit
    assert out["grad_change"].shape == (2,) and out["beta"] > 0
    np.testing.assert_allclose(out["rel_change"] * out["grad_norm"], out["grad_change"])


def test_a_tiny_step_changes_the_loss_by_eta_times_grad_squared():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(32, 6)), rng.integers(0, 3, 32)
    m = MLP((6, 5, 3), seed=2)
    loss0, g = flat_loss_and_grad(m, X, y)
    eta = 1e-6
    out = probe(m, X, y, [eta])
    assert np.isclose(loss0 - out["losses"][0], eta * g @ g, rtol=1e-3)


def test_the_smoothness_claims_hold():
    # Five seeds, as in the notebook: the claims and their thresholds live in course.smoothness.
    r = compare(seeds=range(5))
    assert_all_hold(claims(r))
    for runs in r.values():  # every matched probe really sits below its target loss
        for run in runs:
            assert (run["matched"]["loss0"] < run["targets"]).all()


def test_the_figure_draws_two_rows_of_three_panels():
    from course.figures.smoothness import plot_landscape

    fig = plot_landscape(compare(seeds=range(1), epochs=1, targets=(2.0,)))
    assert len(fig.axes) == 6
    assert all(ax.get_ylabel() for ax in fig.axes)
