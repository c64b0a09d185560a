"""The small CNN: gradients for every norm, parameter count, training and batch dependence."""

import numpy as np
import pytest

from course.cnn import SmallCNN, companion_noise, fit
from course.dataset import load_digits
from course.gradcheck import numerical_gradient, rel_error
from course.layers import softmax_loss
from course.train import accuracy


@pytest.mark.parametrize("norm", [None, "batch", "group", "layer"])
def test_cnn_parameter_gradients(norm):
    rng = np.random.default_rng(0)
    model = SmallCNN(channels=(4, 4), norm=norm, seed=3)
    for _, v, _ in model.params():  # non-trivial gamma/beta, not the 1/0 initial values
        v += rng.normal(0.0, 0.3, v.shape)
    X = rng.normal(size=(6, 1, 8, 8))
    y = rng.integers(0, 10, 6)

    def loss():
        return softmax_loss(model.forward(X), y)[0]

    model.backward(softmax_loss(model.forward(X), y)[1])
    for name, value, grad in model.params():
        num = numerical_gradient(lambda _v: loss(), value)
        assert rel_error(grad, num) <= 1e-7, name  # ReLU/max kinks: a hair looser than 1e-8


def test_parameter_count_with_batchnorm_is_two_per_channel():
    plain, bn = SmallCNN(norm=None), SmallCNN(norm="batch")
    # conv biases (8 + 16) are replaced by beta, and gamma adds one scalar per channel.
    def count(m):
        return sum(v.size for _, v, _ in m.params())
    assert count(bn) - count(plain) == 8 + 16
    assert [v.shape for n, v, _ in bn.params() if n.startswith("norm")] == [(8,)] * 2 + [(16,)] * 2


def test_batchnorm_cnn_trains_where_the_plain_one_stalls():
    # The notebook's claim: on raw pixels (0..16) at lr 0.05, BN reaches high accuracy in three
    # epochs while the same network without BN stays far behind.
    _, plain = fit(None, lr=0.05)
    _, bn = fit("batch", lr=0.05)
    assert bn.val_acc[-1] >= 0.95
    assert plain.val_acc[-1] <= 0.6
    _, plain_slow = fit(None, lr=0.01)
    assert bn.val_acc[-1] > plain_slow.val_acc[-1] + 0.1


def test_batch_dependence_bn_versus_groupnorm():
    d = load_digits()
    Xv = d.images("val")
    bn, _ = fit("batch", lr=0.05, epochs=1)
    gn, _ = fit("group", lr=0.05, epochs=1, groups=4)
    noise = [companion_noise(bn, Xv, B) for B in (2, 8, 32)]
    assert noise[0] > noise[1] > noise[2] > 0
    assert companion_noise(gn, Xv, 2) < 1e-12  # rounding only
    # GroupNorm computes the same thing whatever the batch: accuracy is exactly batch-independent.
    order = np.random.default_rng(0).permutation(len(d.y_val))
    accs = {accuracy(gn, Xv, d.y_val, B, statistics="batch", order=order) for B in (2, 8, 32)}
    assert len(accs) == 1
    # And the running statistics are left as they were.
    before = bn.norms[0].running_mean.copy()
    accuracy(bn, Xv, d.y_val, 2, statistics="batch", order=order)
    np.testing.assert_array_equal(bn.norms[0].running_mean, before)


def test_the_cnn_claims_hold_for_training_and_batch_dependence():
    from course.claims import assert_all_hold
    from course.cnn import batch_dependence, claims, fit, lr_runs
    from course.dataset import load_digits

    runs = lr_runs()
    d = load_digits()
    models = {"batch norm": runs["BN", 0.05][0], "layer norm": fit("layer", lr=0.05)[0]}
    sizes = [2, 8, 32, 128]
    assert_all_hold(claims(runs, batch_dependence(models, d.images("val"), d.y_val, sizes), sizes))
