"""course.smoothness: the probe along the gradient leaves the model alone; BN's smoother loss."""

import numpy as np

from course.mlp import MLP
from course.smoothness import compare, loss_and_grad, probe


def test_probe_leaves_model_and_buffers_unchanged():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(32, 6)), rng.integers(0, 3, 32)
    m = MLP((6, 5, 5, 3), batchnorm=True, seed=1)
    before = [v.copy() for _, v, _ in m.params()] + [m.bn[0].running_mean.copy()]
    out = probe(m, X, y, [0.1, 0.3])
    after = [v for _, v, _ in m.params()] + [m.bn[0].running_mean]
    assert all(np.allclose(a, b) for a, b in zip(before, after, strict=True))
    assert out["grad_change"].shape == (2,) and out["beta"] > 0


def test_a_tiny_step_changes_the_loss_by_eta_times_grad_squared():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(32, 6)), rng.integers(0, 3, 32)
    m = MLP((6, 5, 3), seed=2)
    loss0, g = loss_and_grad(m, X, y)
    eta = 1e-6
    out = probe(m, X, y, [eta])
    assert np.isclose(loss0 - out["losses"][0], eta * g @ g, rtol=1e-3)


def test_bn_makes_the_path_smoother_after_training():
    r = compare(seeds=range(2), epochs=2)
    beta = {bn: np.array([x["beta"][1:] for x in r[bn]]) for bn in r}
    change = {bn: np.array([x["grad_change"][1:, 2] for x in r[bn]]) for bn in r}
    assert beta[True].max() < beta[False].min()
    assert change[True].max() < change[False].min()


def test_the_figure_draws_three_panels():
    from course.figures.smoothness import plot_landscape

    fig = plot_landscape(compare(seeds=range(1), epochs=1))
    assert len(fig.axes) == 3
