"""Small layers, gradient checking, the dataset, the MLP and the trainer."""

import numpy as np
import pytest

from course import layers
from course.dataset import load_digits, load_raw
from course.gradcheck import numerical_gradient, numerical_gradient_array, rel_error
from course.mlp import MLP
from course.optim import SGD, Adam
from course.train import accuracy, train


def test_rel_error_is_zero_for_equal_and_one_for_opposite_arrays():
    a = np.array([1.0, -2.0, 3.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(a, -a) == pytest.approx(1.0)
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0


def test_numerical_gradient_of_a_quadratic_is_exact_and_restores_x():
    x = np.array([1.0, -2.0, 0.5])
    before = x.copy()
    g = numerical_gradient(lambda v: float(np.sum(v**2)), x)
    np.testing.assert_allclose(g, 2 * before, rtol=1e-9)
    np.testing.assert_array_equal(x, before)


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


def test_dataset_is_the_full_digits_set_with_a_fixed_split():
    X, y = load_raw()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0 and X.max() == 16 and set(np.unique(y)) == set(range(10))
    a, b = load_digits(), load_digits()
    np.testing.assert_array_equal(a.y_val, b.y_val)
    assert len(a.y_train) + len(a.y_val) == 1797 and len(a.y_val) == 359
    s = load_digits(standardize=True)
    np.testing.assert_allclose(s.X_train.mean(axis=0), 0, atol=1e-9)
    assert a.images().shape == (1438, 1, 8, 8)


@pytest.mark.parametrize("batchnorm", [False, True])
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_mlp_gradients_match_numerical_gradients(batchnorm, activation):
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(6, 5)), rng.integers(0, 3, 6)
    net = MLP([5, 7, 4, 3], activation=activation, batchnorm=batchnorm, seed=1)
    for bn in net.bn:  # non-trivial gamma/beta, so their gradients are exercised
        if bn is not None:
            bn.gamma[:] = rng.normal(1, 0.3, bn.gamma.shape)
            bn.beta[:] = rng.normal(0, 0.3, bn.beta.shape)
    _, dscores = layers.softmax_loss(net.forward(X), y)
    net.backward(dscores)
    for name, value, grad in net.params():
        original = value.copy()

        def loss_at(v, value=value):
            value[...] = v
            return layers.softmax_loss(net.forward(X), y)[0]

        num = numerical_gradient(loss_at, original.copy())
        value[...] = original  # leave the network as it was for the next parameter
        assert rel_error(grad, num) < 1e-7, name


def test_bias_before_bn_is_not_a_trained_parameter():
    names = [n for n, _, _ in MLP([4, 3, 2], batchnorm=True).params()]
    assert names == ["W0", "bn0.gamma", "bn0.beta", "W1", "b1"]


@pytest.mark.parametrize("make_opt", [lambda: SGD(0.1, 0.9), lambda: Adam(0.05)])
def test_optimizers_minimise_a_quadratic(make_opt):
    w = np.array([3.0, -2.0])
    opt = make_opt()
    for _ in range(300):
        opt.step([("w", w, 2 * (w - 1.0))])
    np.testing.assert_allclose(w, 1.0, atol=1e-2)


def test_training_learns_digits_and_is_deterministic():
    d = load_digits(standardize=True)
    runs = []
    for _ in range(2):
        net = MLP([64, 32, 10], batchnorm=True, seed=0)
        hist = train(net, d.X_train, d.y_train, d.X_val, d.y_val, SGD(0.05, 0.9), epochs=3)
        runs.append(hist)
    assert runs[0].val_acc == runs[1].val_acc
    assert runs[0].val_acc[-1] > 0.9  # chance is 0.1
    assert runs[0].loss[-1] < runs[0].loss[0]
    assert accuracy(net, d.X_val, d.y_val) == runs[1].val_acc[-1]
    assert net.training  # accuracy() restores the mode it found
