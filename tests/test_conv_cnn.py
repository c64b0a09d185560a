"""Convolution, max-pooling and the small CNN: exact values, gradients and the claimed effects."""

import numpy as np
import pytest

from course.cnn import SmallCNN, batch_stat_accuracy, companion_noise, fit
from course.conv import conv_backward, conv_forward, maxpool_backward, maxpool_forward
from course.dataset import load_digits
from course.gradcheck import numerical_gradient, numerical_gradient_array, rel_error
from course.layers import softmax_loss


def _naive_conv(x, w, b, stride, pad):
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    F, _, HH, WW = w.shape
    Ho, Wo = (xp.shape[2] - HH) // stride + 1, (xp.shape[3] - WW) // stride + 1
    out = np.zeros((x.shape[0], F, Ho, Wo))
    for n in range(x.shape[0]):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    patch = xp[n, :, i * stride:i * stride + HH, j * stride:j * stride + WW]
                    out[n, f, i, j] = (patch * w[f]).sum() + b[f]
    return out


CONV_CASES = [((2, 3, 5, 6), (4, 3, 3, 3), 1, 1), ((2, 3, 7, 6), (4, 3, 3, 3), 2, 1),
              ((2, 2, 6, 7), (3, 2, 3, 2), 2, 0), ((1, 1, 8, 8), (2, 1, 3, 3), 1, 1)]


@pytest.mark.parametrize("xs, ws, stride, pad", CONV_CASES)
def test_conv_forward_matches_loops(xs, ws, stride, pad):
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=xs), rng.normal(size=ws), rng.normal(size=ws[0])
    out, _ = conv_forward(x, w, b, {"stride": stride, "pad": pad})
    np.testing.assert_allclose(out, _naive_conv(x, w, b, stride, pad), atol=1e-12)


@pytest.mark.parametrize("xs, ws, stride, pad", CONV_CASES)
def test_conv_gradients(xs, ws, stride, pad):
    rng = np.random.default_rng(1)
    x, w, b = rng.normal(size=xs), rng.normal(size=ws), rng.normal(size=ws[0])
    p = {"stride": stride, "pad": pad}
    out, cache = conv_forward(x, w, b, p)
    dout = rng.normal(size=out.shape)
    dx, dw, db = conv_backward(dout, cache)
    assert rel_error(dx, numerical_gradient_array(lambda v: conv_forward(v, w, b, p)[0],
                                                  x, dout)) <= 1e-8
    assert rel_error(dw, numerical_gradient_array(lambda v: conv_forward(x, v, b, p)[0],
                                                  w, dout)) <= 1e-8
    assert rel_error(db, numerical_gradient_array(lambda v: conv_forward(x, w, v, p)[0],
                                                  b, dout)) <= 1e-8


def test_maxpool_forward_values_and_gradient():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 4, 6))
    out, cache = maxpool_forward(x)
    expected = x.reshape(2, 3, 2, 2, 3, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(out, expected)
    dout = rng.normal(size=out.shape)
    num = numerical_gradient_array(lambda v: maxpool_forward(v)[0], x, dout)
    assert rel_error(maxpool_backward(dout, cache), num) <= 1e-8


def test_maxpool_sends_a_tied_gradient_to_one_input_only():
    # After ReLU whole blocks are 0: the gradient must not be counted once per tied entry.
    x = np.zeros((1, 1, 2, 2))
    out, cache = maxpool_forward(x)
    dx = maxpool_backward(np.full(out.shape, 3.0), cache)
    assert dx.sum() == 3.0 and np.count_nonzero(dx) == 1


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
    assert bn.num_params() - plain.num_params() == 8 + 16
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
    accs = {batch_stat_accuracy(gn, Xv, d.y_val, B) for B in (2, 8, 32)}
    assert len(accs) == 1
    # And the running statistics are left as they were.
    before = bn.norms[0].running_mean.copy()
    batch_stat_accuracy(bn, Xv, d.y_val, 2)
    np.testing.assert_array_equal(bn.norms[0].running_mean, before)
