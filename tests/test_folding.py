"""Folding test-mode BN into the layer before it keeps the outputs, for affine and conv layers."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from course.batchnorm import batchnorm_forward
from course.conv import conv_forward
from course.folding import (
    bn_scale_shift,
    fold_batchnorm,
    fold_batchnorm_conv,
    fold_mlp,
)
from course.mlp import MLP
from course.norms import spatial_batchnorm_forward


def _bn_stats(rng, M):
    """Random, non-trivial BN parameters and running statistics for M channels."""
    return dict(gamma=rng.normal(0.0, 2.0, M), beta=rng.normal(0.0, 2.0, M),
                running_mean=rng.normal(0.0, 3.0, M),
                running_var=rng.uniform(1e-4, 5.0, M))


def _bn_test(z, stats, eps):
    """Reference test-mode BN from course.batchnorm."""
    param = {"mode": "test", "eps": eps, "running_mean": stats["running_mean"],
             "running_var": stats["running_var"]}
    return batchnorm_forward(z, stats["gamma"], stats["beta"], param)[0]


@given(N=st.integers(1, 12), D=st.integers(1, 9), M=st.integers(1, 9),
       eps=st.sampled_from([1e-5, 1e-3, 0.1]), seed=st.integers(0, 2**32 - 1))
def test_folded_affine_layer_equals_affine_then_bn(N, D, M, eps, seed):
    rng = np.random.default_rng(seed)
    x, w, b = rng.normal(size=(N, D)), rng.normal(size=(D, M)), rng.normal(size=M)
    stats = _bn_stats(rng, M)
    w_f, b_f = fold_batchnorm(w, b, eps=eps, **stats)
    assert w_f.shape == (D, M) and b_f.shape == (M,)
    np.testing.assert_allclose(x @ w_f + b_f, _bn_test(x @ w + b, stats, eps),
                               rtol=1e-11, atol=1e-11)


def test_fold_does_not_change_its_inputs():
    rng = np.random.default_rng(0)
    w, b, stats = rng.normal(size=(3, 4)), rng.normal(size=4), _bn_stats(rng, 4)
    before = [w.copy(), b.copy()] + [v.copy() for v in stats.values()]
    fold_batchnorm(w, b, **stats)
    for old, new in zip(before, [w, b, *stats.values()], strict=True):
        np.testing.assert_array_equal(old, new)


def _spatial_bn_test(x, stats, eps=1e-5):
    """Reference test-mode spatial BN from course.norms."""
    param = {"mode": "test", "eps": eps, "running_mean": stats["running_mean"],
             "running_var": stats["running_var"]}
    return spatial_batchnorm_forward(x, stats["gamma"], stats["beta"], param)[0]


def test_scale_and_shift_are_test_mode_bn():
    rng = np.random.default_rng(2)
    z, stats = rng.normal(size=(6, 4)), _bn_stats(rng, 4)
    scale, shift = bn_scale_shift(**stats)
    np.testing.assert_allclose(z * scale + shift, _bn_test(z, stats, 1e-5), rtol=1e-12,
                               atol=1e-12)


@given(F=st.integers(1, 5), C=st.integers(1, 3), k=st.integers(1, 3),
       stride=st.integers(1, 2), seed=st.integers(0, 2**32 - 1))
def test_folded_conv_equals_conv_then_spatial_bn(F, C, k, stride, seed):
    rng = np.random.default_rng(seed)
    x, w, b = rng.normal(size=(2, C, 5, 4)), rng.normal(size=(F, C, k, k)), rng.normal(size=F)
    stats = _bn_stats(rng, F)
    param = {"stride": stride, "pad": 0}  # no padding: see notebook 06, Think! 1
    w_f, b_f = fold_batchnorm_conv(w, b, **stats)
    np.testing.assert_allclose(conv_forward(x, w_f, b_f, param)[0],
                               _spatial_bn_test(conv_forward(x, w, b, param)[0], stats),
                               rtol=1e-11, atol=1e-11)


def _bn_mlp_with_random_stats(seed, activation="relu"):
    """A BN MLP whose gamma, beta and running statistics are all far from their initial values."""
    rng = np.random.default_rng(seed)
    model = MLP([6, 5, 7, 3], activation=activation, batchnorm=True, seed=seed)
    for bn in model.bn[:-1]:
        for name, value in _bn_stats(rng, len(bn.gamma)).items():
            setattr(bn, name, value)
    for i in range(len(model.b)):
        model.b[i] = rng.normal(size=model.b[i].shape)  # non-zero biases must be folded too
    return model


@given(seed=st.integers(0, 2**32 - 1), activation=st.sampled_from(["relu", "sigmoid"]))
def test_folded_mlp_equals_mlp_in_eval_mode(seed, activation):
    model = _bn_mlp_with_random_stats(seed, activation)
    X = np.random.default_rng(seed + 1).normal(size=(9, 6))
    folded = fold_mlp(model)
    assert all(bn is None for bn in folded.bn)
    np.testing.assert_allclose(folded.forward(X), model.eval().forward(X), rtol=1e-11, atol=1e-11)


def test_fold_mlp_leaves_the_original_model_alone():
    model = _bn_mlp_with_random_stats(3)
    W0 = [w.copy() for w in model.W]
    fold_mlp(model)
    assert all(bn is not None for bn in model.bn[:-1])
    for old, new in zip(W0, model.W, strict=True):
        np.testing.assert_array_equal(old, new)
