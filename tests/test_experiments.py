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


def test_sweeps_return_one_row_per_seed_and_the_batch_size_rule_is_linear():
    r = ex.sweep("lr", (0.1, 1.0), epochs=1, seeds=(0, 1))
    assert r[True].shape == (2, 2) and not np.array_equal(r[True][0], r[True][1])  # seeds differ
    assert r[True][1, 1] == ex.run(True, lr=1.0, epochs=1, seed=1)[1].val_acc[-1]
    assert ex.scaled_lr(64) == 0.1 and ex.scaled_lr(16) == 0.025 and ex.scaled_lr(256, 0.05) == 0.2
