"""Network's train/eval switch and `predicting`: test mode, or each batch's own statistics."""

import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course import experiments as ex
from course.cnn import SmallCNN
from course.mlp import MLP
from course.placement import PLACEMENTS, PlacementMLP


@pytest.fixture(scope="module")
def trained_bn():
    return ex.run(True, epochs=5)[0]


def _buffers(model):
    return [(bn.running_mean.copy(), bn.running_var.copy()) for bn in model.bn if bn is not None]


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 40), seed=st.integers(0, 1000))
def test_batch_statistics_are_the_train_mode_forward_without_touching_the_buffers(
        trained_bn, n, seed):
    X = ex.digits().X_val[np.random.default_rng(seed).permutation(359)[:n]]
    model = copy.deepcopy(trained_bn)
    before = _buffers(model)
    with model.predicting("batch"):
        scores = model.forward(X)  # (n, 10)
    for (m0, v0), (m1, v1) in zip(before, _buffers(model), strict=True):
        np.testing.assert_array_equal(m0, m1)
        np.testing.assert_array_equal(v0, v1)
    train_mode = copy.deepcopy(trained_bn).train()
    np.testing.assert_array_equal(scores, train_mode.forward(X))
    # The real train-mode forward does move the buffers: that is what `predicting` avoids.
    assert not np.array_equal(train_mode.bn[0].running_mean, trained_bn.bn[0].running_mean)


def test_a_batch_of_one_gives_every_input_the_same_scores(trained_bn):
    X = ex.digits().X_val
    with trained_bn.predicting("batch"):
        s = np.array([trained_bn.forward(X[i:i + 1])[0] for i in range(20)])  # (20, 10)
    np.testing.assert_array_equal(s, np.broadcast_to(s[0], s.shape))
    # ...namely the scores of a network whose first BN layer outputs beta.
    h = np.maximum(trained_bn.bn[0].beta, 0)  # (64,)  ReLU(beta)
    for W, b, bn in zip(trained_bn.W[1:-1], trained_bn.b[1:-1], trained_bn.bn[1:-1], strict=True):
        h = np.maximum(bn.beta, 0) if bn is not None else np.maximum(h @ W + b, 0)
    np.testing.assert_allclose(s[0], h @ trained_bn.W[-1] + trained_bn.b[-1], rtol=1e-12)


def test_running_statistics_are_test_mode(trained_bn):
    X = ex.digits().X_val[:50]
    with trained_bn.predicting():
        scores = trained_bn.forward(X)
    np.testing.assert_array_equal(scores, copy.deepcopy(trained_bn).eval().forward(X))


def test_a_model_without_bn_is_unaffected_by_batch_composition():
    d = ex.digits()
    model = MLP((64, 32, 10), seed=1)
    with model.predicting("batch"):
        one = np.array([model.forward(d.X_val[i:i + 1])[0] for i in range(5)])  # (5, 10)
        np.testing.assert_allclose(one, model.forward(d.X_val[:5]), rtol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_the_mode_is_restored_after_the_block_even_on_error(training):
    model = MLP((4, 3, 2), batchnorm=True).train(training)
    with pytest.raises(RuntimeError), model.predicting("batch"):
        assert model.bn[0].training and model.bn[0].frozen and not model.training
        raise RuntimeError
    assert model.training == training and model.bn[0].training == training
    assert not model.bn[0].frozen


def test_dropout_is_off_while_predicting_with_batch_statistics():
    model = PlacementMLP([6, 5, 4, 3], PLACEMENTS["BN -> ReLU -> dropout, every block"](2),
                         p_drop=0.5, seed=0)
    X = np.random.default_rng(0).normal(size=(16, 6))
    with model.predicting("batch"):
        a, b = model.forward(X), model.forward(X)  # dropout would draw new masks each call
    np.testing.assert_array_equal(a, b)


def test_a_cnn_predicts_with_batch_statistics_too():
    model = SmallCNN(norm="batch", seed=0)
    X = np.random.default_rng(0).normal(size=(6, 1, 8, 8))
    before = model.norms[0].running_mean.copy()
    with model.predicting("batch"):
        scores = model.forward(X)
    np.testing.assert_array_equal(model.norms[0].running_mean, before)
    np.testing.assert_array_equal(scores, copy.deepcopy(model).train().forward(X))


def test_unknown_statistics_are_refused():
    with pytest.raises(ValueError, match="statistics"), MLP((4, 2)).predicting("population"):
        pass
