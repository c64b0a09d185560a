"""Convolution and max pooling against loops and numerical gradients."""

import numpy as np
import pytest

from course.conv import conv_backward, conv_forward, maxpool_backward, maxpool_forward
from course.gradcheck import numerical_gradient_array, rel_error


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


def _conv_inputs(rng, xs, ws):
    """Random input, filters and biases of the given shapes."""
    return rng.normal(size=xs), rng.normal(size=ws), rng.normal(size=ws[0])


@pytest.mark.parametrize("xs, ws, stride, pad", CONV_CASES)
def test_conv_forward_matches_loops(xs, ws, stride, pad):
    x, w, b = _conv_inputs(np.random.default_rng(0), xs, ws)
    out, _ = conv_forward(x, w, b, {"stride": stride, "pad": pad})
    np.testing.assert_allclose(out, _naive_conv(x, w, b, stride, pad), atol=1e-12)


@pytest.mark.parametrize("xs, ws, stride, pad", CONV_CASES)
def test_conv_gradients(xs, ws, stride, pad):
    rng = np.random.default_rng(1)
    x, w, b = _conv_inputs(rng, xs, ws)
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
