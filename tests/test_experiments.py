"""The training experiments: deterministic runs and the deployment bug.

The sweeps' effects (curves, init scale, learning rate, batch size, saturation) are asserted where
they are shown, in notebook 04's cells, so nbval checks them without running the sweeps again."""


import numpy as np
import pytest

from course import experiments as ex


@pytest.fixture(scope="module")
def trained_bn():
    return ex.run(True, epochs=5)[0]


def test_runs_are_deterministic():
    a, b = ex.run(True, epochs=1)[1], ex.run(True, epochs=1)[1]
    assert a.loss == b.loss and a.val_acc == b.val_acc


def test_deployment_bug(trained_bn):
    d = ex.digits()
    r = ex.deployment_bug(trained_bn, d.X_val, d.y_val)
    assert r["test mode"] > 0.95
    # One example at a time: one constant prediction, so accuracy = that class's share (~10%).
    with trained_bn.predicting("batch"):
        pred = trained_bn.forward(d.X_val[:1])[0].argmax()
    assert r["train mode, random batches of 1"] == pytest.approx(np.mean(d.y_val == pred))
    assert r["train mode, random batches of 1"] < 0.2
    assert r["train mode, random batches of 64"] > r["test mode"] - 0.03
    assert r["train mode, one-class batches of 64"] < r["train mode, random batches of 64"] - 0.3
    assert r["train mode, one-class batches of 8"] < 0.3


def test_plots_draw():
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4)
    h = {bn: ex.run(bn, epochs=1)[1] for bn in (False, True)}
    ex.plot_curves(axes[:2], h)
    ex.plot_sweep(axes[2], [0.1, 1.0], {False: np.array([0.9, 0.1]), True: np.array([1, 1])}, "x")
    ex.plot_saturation(axes[3], {bn: {"init": np.zeros(3), "trained": np.ones(3), "val_acc": 0.5}
                                 for bn in (False, True)})
    plt.close(fig)
