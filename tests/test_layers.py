"""The plain layers: affine, activations, softmax loss and dropout, checked numerically."""

import numpy as np
import pytest

from course import layers
from course.gradcheck import numerical_gradient, numerical_gradient_array, rel_error


@pytest.mark.parametrize("name", ["sigmoid", "relu"])
def test_activation_backward_matches_numerical_gradient(name):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 4)) + 0.05  # keep ReLU inputs away from the kink at 0
    dout = rng.normal(size=(5, 4))
    fwd, bwd = getattr(layers, f"{name}_forward"), getattr(layers, f"{name}_backward")
    _, cache = fwd(x)
    num = numerical_gradient_array(lambda v: fwd(v)[0], x.copy(), dout)
    assert rel_error(bwd(dout, cache), num) < 1e-8


def test_affine_backward_matches_numerical_gradient():
    rng = np.random.default_rng(2)
    x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=5)
    dout = rng.normal(size=(4, 5))
    dx, dw, db = layers.affine_backward(dout, layers.affine_forward(x, w, b)[1])
    assert rel_error(dx, numerical_gradient_array(lambda v: v @ w + b, x.copy(), dout)) < 1e-8
    assert rel_error(dw, numerical_gradient_array(lambda v: x @ v + b, w.copy(), dout)) < 1e-8
    assert rel_error(db, numerical_gradient_array(lambda v: x @ w + v, b.copy(), dout)) < 1e-8


def test_sigmoid_is_stable_and_its_derivative_peaks_at_one_quarter():
    z = np.array([-1000.0, -5.0, 0.0, 5.0, 1000.0])
    s = layers.sigmoid(z)
    assert np.all(np.isfinite(s)) and s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    assert layers.sigmoid_grad(np.array([0.0]))[0] == 0.25


def test_softmax_loss_of_uniform_scores_is_log_c_and_gradient_checks():
    loss, _ = layers.softmax_loss(np.zeros((3, 10)), np.array([0, 4, 9]))
    assert loss == pytest.approx(np.log(10))
    rng = np.random.default_rng(3)
    scores, y = rng.normal(size=(6, 4)), rng.integers(0, 4, 6)
    _, dscores = layers.softmax_loss(scores, y)
    num = numerical_gradient(lambda v: layers.softmax_loss(v, y)[0], scores.copy())
    assert rel_error(dscores, num) < 1e-8


def test_inverted_dropout_keeps_the_mean_and_is_off_in_eval():
    rng = np.random.default_rng(0)
    x = np.ones((2000, 50))
    out, mask = layers.dropout_forward(x, 0.5, rng, training=True)
    assert abs(out.mean() - 1) < 0.02 and abs((out == 0).mean() - 0.5) < 0.02
    same, none = layers.dropout_forward(x, 0.5, rng, training=False)
    assert same is x and none is None
