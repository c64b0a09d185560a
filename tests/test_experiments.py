"""The training experiments: deterministic runs and the deployment bug.

Each experiment's claims (the sentences notebook 04 prints, with their thresholds) are asserted
here with assert_all_hold: one threshold, in course.experiments, for the notebook and the tests."""


import numpy as np
import pytest

from course import experiments as ex
from course.claims import assert_all_hold


@pytest.fixture(scope="module")
def trained_bn():
    return ex.run(True, epochs=5)[0]


def test_runs_are_deterministic():
    a, b = ex.run(True, epochs=1)[1], ex.run(True, epochs=1)[1]
    assert a.loss == b.loss and a.val_acc == b.val_acc


def test_deployment_bug(trained_bn):
    d = ex.digits()
    r = ex.deployment_bug(trained_bn, d.X_val, d.y_val)
    acc = r["acc"]
    # One example at a time: one constant prediction, so accuracy = that class's share (~10%).
    with trained_bn.predicting("batch"):
        pred = trained_bn.forward(d.X_val[:1])[0].argmax()
    assert acc["train mode, random batches of 1"] == pytest.approx(np.mean(d.y_val == pred))
    # The label-sorted batches are what their label says: a few digits each, and every
    # one-class batch holds exactly one digit (all of its images).
    assert r["digits_per_batch"][64] == [2, 3, 3, 3, 2, 2]
    assert sum(r["class_counts"]) == len(d.y_val)
    assert_all_hold(ex.claims(r))


def test_one_class_accuracy_normalises_each_digit_with_its_own_statistics(trained_bn):
    d = ex.digits()
    X, y = d.X_val, d.y_val
    correct = 0
    for c in range(10):
        with trained_bn.predicting("batch"):
            correct += int((trained_bn.forward(X[y == c]).argmax(axis=1) == c).sum())
    assert ex.one_class_accuracy(trained_bn, X, y) == correct / len(y)
    shuffled = np.random.default_rng(1).permutation(len(y))  # order within the data is irrelevant
    assert ex.one_class_accuracy(trained_bn, X[shuffled], y[shuffled]) == correct / len(y)


def test_spread_uses_ddof_1_and_states_n():
    assert ex.sd([1.0, 2.0, 3.0]) == pytest.approx(1.0)  # ddof=0 would give 0.816
    assert ex.spread([1.0, 2.0, 3.0]) == "2.000 ± 1.000 [1.000, 3.000] (n = 3)"


@pytest.mark.parametrize("name", ["curves", "saturation", "init", "lr", "batch", "ratio"])
def test_notebook_04_claims_hold(name):
    run = {"curves": ex.curves, "saturation": ex.saturation_by_layer,
           "init": ex.init_scale_sweep, "lr": ex.lr_sweep, "batch": ex.batch_size_sweep,
           "ratio": ex.running_var_ratio}[name]
    assert_all_hold(ex.claims(run()))


def test_the_two_plain_failure_modes_are_compared_at_the_same_budget():
    r = ex.failure_modes(ex.curves(), ex.saturation_by_layer())
    assert r["epochs"] == 2 and r["collapse"].shape == r["saturated"].shape == (3,)
    assert_all_hold(ex.claims(r))


def test_recalibration_control_at_batches_of_two_uses_the_same_runs_and_its_claim_holds():
    r = ex.small_batch_recalibration(ex.batch_size_sweep(batch_sizes=(2,)))
    sweep_bn = ex.batch_size_sweep(batch_sizes=(2,))["acc"][True][:, 0]
    np.testing.assert_array_equal(r["before"], sweep_bn)  # the sweep's own BN runs, retrained
    model, _ = ex.run(True, lr=ex.scaled_lr(2), batch_size=2, epochs=2, seed=0)
    from course.running_stats import population_statistics

    mean, var = population_statistics(model, ex.digits().X_train, 64, 0, True)[0]
    assert not np.allclose(model.bn[0].running_mean, mean)  # the control changes something
    assert_all_hold(ex.claims(r))


def test_sweep_table_prints_the_ddof_1_spread():
    r = ex.sweep("lr", (0.1, 1.0), epochs=1, seeds=(0, 1))
    table = ex.sweep_table(r)
    a = r["acc"][True][:, 1]
    assert f"{a.mean():.3f}±{np.std(a, ddof=1):.3f}" in table and "n = 2" in table


def test_sweeps_return_one_row_per_seed_and_the_batch_size_rule_is_linear():
    r = ex.sweep("lr", (0.1, 1.0), epochs=1, seeds=(0, 1))["acc"]
    assert r[True].shape == (2, 2) and not np.array_equal(r[True][0], r[True][1])  # seeds differ
    assert r[True][1, 1] == ex.run(True, lr=1.0, epochs=1, seed=1)[1].val_acc[-1]
    assert ex.scaled_lr(64) == 0.1 and ex.scaled_lr(16) == 0.025 and ex.scaled_lr(256, 0.05) == 0.2


def test_batches_of_two_normalise_every_value_to_plus_or_minus_one():
    from course.batchnorm import batchnorm_forward

    x = np.random.default_rng(0).normal(size=(2, 50)) * 3.0  # (2, 50)
    out = batchnorm_forward(x, np.ones(50), np.zeros(50), {"mode": "train"})[0]
    far = np.abs(x[0] - x[1]) > 0.1  # where eps cannot take over
    np.testing.assert_allclose(np.abs(out[:, far]), 1.0, rtol=1e-2)
