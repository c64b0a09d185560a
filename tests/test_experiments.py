"""The training experiments of notebook 04 show the effects the notebook claims, on this data."""


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


def test_curves_deep_sigmoid_trains_only_with_bn():
    h = ex.curves()
    assert max(h[False].val_acc) < 0.3  # stuck near chance for every epoch
    assert h[True].val_acc[-1] > 0.9
    assert np.mean(h[True].loss[-10:]) < 0.5 * np.mean(h[False].loss[-10:])


def test_bn_tolerates_a_wider_range_of_init_scales():
    r = ex.init_scale_sweep()
    good = {bn: [s for s, a in zip(ex.INIT_SCALES, r[bn], strict=True) if a > 0.9] for bn in r}
    assert set(good[False]) < set(good[True])  # strictly more scales work with BN
    assert len(good[True]) >= len(good[False]) + 3
    assert r[False][0] < 0.2 and r[True][0] > 0.9  # weights of 0.001: only BN recovers


def test_bn_tolerates_larger_learning_rates():
    r = ex.lr_sweep()
    lrs = np.array(ex.LEARNING_RATES)
    assert np.all(r[False][lrs >= 1.0] < 0.2)
    assert np.all(r[True][(lrs >= 0.3) & (lrs <= 1.0)] > 0.9)
    assert r[True][lrs == 3.0][0] < 0.5  # but not any learning rate: 3.0 diverges either way


def test_bn_needs_more_than_two_examples_per_batch():
    r = ex.batch_size_sweep()
    bs = np.array(ex.BATCH_SIZES)
    assert r[True][bs == 2][0] < r[False][bs == 2][0] - 0.2
    assert r[True][bs == 2][0] < r[True][bs == 16][0] - 0.2
    assert np.all(r[True][(bs >= 4) & (bs <= 64)] > 0.9)


def test_bn_removes_saturation_in_a_deep_sigmoid_net():
    r = ex.saturation_by_layer()
    assert np.all(r[False]["init"] > 0.3) and np.all(r[False]["trained"] > 0.3)
    assert np.all(r[True]["init"] < 0.01) and np.all(r[True]["trained"] < 0.01)
    assert r[True]["val_acc"] > r[False]["val_acc"] + 0.1


def test_plots_draw():
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4)
    h = {bn: ex.run(bn, epochs=1)[1] for bn in (False, True)}
    ex.plot_curves(axes[:2], h)
    ex.plot_sweep(axes[2], [0.1, 1.0], {False: np.array([0.9, 0.1]), True: np.array([1, 1])}, "x")
    ex.plot_saturation(axes[3], {bn: {"init": np.zeros(3), "trained": np.ones(3), "val_acc": 0.5}
                                 for bn in (False, True)})
    plt.close(fig)
