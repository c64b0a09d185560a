"""Spatial batch norm, layer norm and group norm: gradients and invariants."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from course.batchnorm import batchnorm_backward_alt, batchnorm_forward
from course.gradcheck import numerical_gradient_array, rel_error
from course.norms import (
    KINDS,
    groupnorm_backward,
    groupnorm_forward,
    layernorm_backward,
    layernorm_forward,
    normalize,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)


def _check_grads(forward, backward, x, gamma, beta):
    """Analytic gradients of a normalisation against centred differences, random upstream."""
    rng = np.random.default_rng(1)
    out, cache = forward(x, gamma, beta)
    dout = rng.normal(size=out.shape)  # not all ones: that would make dx vanish for any norm
    dx, dgamma, dbeta = backward(dout, cache)
    num_dx = numerical_gradient_array(lambda v: forward(v, gamma, beta)[0], x.copy(), dout)
    num_dg = numerical_gradient_array(lambda v: forward(x, v, beta)[0], gamma.copy(), dout)
    num_db = numerical_gradient_array(lambda v: forward(x, gamma, v)[0], beta.copy(), dout)
    assert np.abs(dx).max() > 1e-3  # a non-trivial gradient is being compared
    assert rel_error(dx, num_dx) <= 1e-8
    assert rel_error(dgamma, num_dg) <= 1e-8
    assert rel_error(dbeta, num_db) <= 1e-8


def _params(rng, C):
    return rng.normal(1.0, 0.5, C), rng.normal(0.0, 1.0, C)


@pytest.mark.parametrize("shape", [(4, 3, 5, 2), (2, 2, 3, 3)])
def test_spatial_batchnorm_gradients(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, shape)
    gamma, beta = _params(rng, shape[1])
    _check_grads(lambda x_, g, b: spatial_batchnorm_forward(x_, g, b, {"mode": "train"}),
                 spatial_batchnorm_backward, x, gamma, beta)


@pytest.mark.parametrize("shape", [(5, 6), (1, 4), (3, 3)])
def test_layernorm_gradients(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, shape) * rng.uniform(0.5, 3.0, (shape[0], 1))
    gamma, beta = _params(rng, shape[1])
    _check_grads(lambda x_, g, b: layernorm_forward(x_, g, b, {}), layernorm_backward,
                 x, gamma, beta)


@pytest.mark.parametrize("G", [1, 2, 4])
def test_groupnorm_gradients(G):
    rng = np.random.default_rng(G)
    x = rng.normal(1.0, 2.0, (3, 4, 3, 2))
    gamma, beta = _params(rng, 4)
    _check_grads(lambda x_, g, b: groupnorm_forward(x_, g, b, G, {}), groupnorm_backward,
                 x, gamma, beta)


def _maps(N, C, H, W, seed):
    rng = np.random.default_rng(seed)
    return (rng.normal(0.0, 1.0, (N, C, H, W)) * rng.uniform(0.1, 10.0, (1, C, 1, 1))
            + rng.normal(0.0, 5.0, (1, C, 1, 1)))


seeds = st.integers(0, 2**32 - 1)
# (N, C, H, W) feature maps, each channel with its own scale and offset
feature_maps = st.tuples(st.integers(2, 5), st.integers(1, 4), st.integers(1, 4),
                         st.integers(1, 4), seeds).map(lambda dims: _maps(*dims))


@given(feature_maps)
def test_spatial_bn_standardises_each_channel(x):
    C = x.shape[1]
    out, _ = spatial_batchnorm_forward(x, np.ones(C), np.zeros(C), {"mode": "train", "eps": 1e-12})
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-8)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1.0, atol=1e-6)


@given(feature_maps, seeds)
def test_spatial_bn_is_vanilla_bn_on_transposed_rows(x, seed):
    N, C, H, W = x.shape
    rng = np.random.default_rng(seed)
    gamma, beta = _params(rng, C)
    p1 = {"mode": "train", "running_mean": rng.normal(size=C), "running_var": np.full(C, 2.0)}
    p2 = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in p1.items()}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, p1)
    rows = x.transpose(0, 2, 3, 1).reshape(-1, C)  # (N*H*W, C)
    ref, ref_cache = batchnorm_forward(rows, gamma, beta, p2)
    np.testing.assert_allclose(out, ref.reshape(N, H, W, C).transpose(0, 3, 1, 2))
    np.testing.assert_allclose(p1["running_mean"], p2["running_mean"])
    np.testing.assert_allclose(p1["running_var"], p2["running_var"])
    dout = rng.normal(size=x.shape)
    dx, dg, db = spatial_batchnorm_backward(dout, cache)
    rdx, rdg, rdb = batchnorm_backward_alt(dout.transpose(0, 2, 3, 1).reshape(-1, C), ref_cache)
    np.testing.assert_allclose(dx, rdx.reshape(N, H, W, C).transpose(0, 3, 1, 2), atol=1e-12)
    np.testing.assert_allclose(dg, rdg)
    np.testing.assert_allclose(db, rdb)


def test_spatial_bn_test_mode_uses_running_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 2, 2, 2))
    p = {"mode": "test", "running_mean": np.array([1.0, -1.0]),
         "running_var": np.array([4.0, 0.25])}
    out, _ = spatial_batchnorm_forward(x, np.array([2.0, 1.0]), np.array([0.5, 0.0]), p)
    expected_c0 = 2.0 * (x[:, 0] - 1.0) / np.sqrt(4.0 + 1e-5) + 0.5
    expected_c1 = (x[:, 1] + 1.0) / np.sqrt(0.25 + 1e-5)
    np.testing.assert_allclose(out[:, 0], expected_c0)
    np.testing.assert_allclose(out[:, 1], expected_c1)


@given(st.integers(1, 6), st.integers(2, 8), st.integers(0, 2**32 - 1))
def test_layernorm_standardises_each_example(N, D, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (N, D)) * rng.uniform(0.1, 10.0, (N, 1)) + rng.normal(0, 5, (N, 1))
    out, _ = layernorm_forward(x, np.ones(D), np.zeros(D), {"eps": 1e-12})
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-8)
    v = x.var(axis=1)  # (N,) eps shrinks each variance to v / (v + eps): visible for tiny v
    np.testing.assert_allclose(out.var(axis=1), v / (v + 1e-12), rtol=1e-9)
    # Per example means no batch: each row alone gives the same result as in the batch.
    alone = np.concatenate([layernorm_forward(x[i:i + 1], np.ones(D), np.zeros(D),
                                              {"eps": 1e-12})[0] for i in range(N)])
    np.testing.assert_allclose(alone, out)


def _layernorm_over_chw(x, gamma, beta):
    N, C, H, W = x.shape
    ln, _ = layernorm_forward(x.reshape(N, -1), np.repeat(gamma, H * W), np.repeat(beta, H * W),
                              {})
    return ln.reshape(x.shape)


def _instance_norm(x, gamma, beta):
    C = x.shape[1]
    mu, var = x.mean(axis=(2, 3), keepdims=True), x.var(axis=(2, 3), keepdims=True)
    return gamma.reshape(1, C, 1, 1) * (x - mu) / np.sqrt(var + 1e-5) + beta.reshape(1, C, 1, 1)


@pytest.mark.parametrize("groups, group_axes, reference, atol", [
    (lambda C: 1, (1, 2, 3), _layernorm_over_chw, 1e-12),
    (lambda C: C, (2, 3), _instance_norm, 1e-10),
], ids=["one_group_is_layernorm_over_chw", "c_groups_is_instance_norm"])
@given(feature_maps, seeds)
def test_groupnorm_at_its_extremes(groups, group_axes, reference, atol, x, seed):
    if np.prod([x.shape[a] for a in group_axes]) < 2:  # a group of one value has no variance
        return
    C = x.shape[1]
    gamma, beta = _params(np.random.default_rng(seed), C)
    out, _ = groupnorm_forward(x, gamma, beta, groups(C), {})
    np.testing.assert_allclose(out, reference(x, gamma, beta), atol=atol)


def test_layernorm_with_two_features_keeps_only_their_order():
    # With D = 2, x_hat is (-1, +1) or (+1, -1) whatever the values: notebook 05's "LN works
    # badly" example. Its gradient w.r.t. x is then (almost) zero.
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 5.0, (50, 2))
    out, cache = layernorm_forward(x, np.ones(2), np.zeros(2), {"eps": 1e-12})
    np.testing.assert_allclose(np.abs(out), 1.0, atol=1e-6)
    np.testing.assert_array_equal(np.sign(out[:, 1]), np.sign(x[:, 1] - x[:, 0]))
    dx, _, _ = layernorm_backward(rng.normal(size=(50, 2)), cache)
    assert np.abs(dx).max() < 1e-6


def test_groupnorm_rejects_groups_that_do_not_divide_channels():
    with pytest.raises(ValueError, match="divide"):
        groupnorm_forward(np.zeros((2, 6, 2, 2)), np.ones(6), np.zeros(6), 4, {})


@pytest.mark.parametrize("kind, axes", [("batch", (0, 2, 3)), ("layer", (1, 2, 3)),
                                        ("instance", (2, 3))])
def test_normalize_standardises_over_the_axes_of_its_kind(kind, axes):
    x = np.random.default_rng(0).normal(3.0, 2.0, (4, 6, 3, 3))  # (N, C, H, W)
    mu, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    np.testing.assert_allclose(normalize(x, kind), (x - mu) / np.sqrt(var + 1e-5), atol=1e-12)


def test_normalize_group_kind_is_groupnorm_and_unknown_kinds_are_refused():
    x = np.random.default_rng(1).normal(size=(2, 6, 2, 2))  # (N, C, H, W)
    groups = x.reshape(2, 3, -1)  # (N, G, C/G*H*W)
    expected = (groups - groups.mean(axis=2, keepdims=True)) / np.sqrt(
        groups.var(axis=2, keepdims=True) + 1e-5)
    np.testing.assert_allclose(normalize(x, "group", groups=3), expected.reshape(x.shape),
                               atol=1e-12)
    assert KINDS == ("batch", "layer", "instance", "group")
    with pytest.raises(ValueError, match="kind must be one of"):
        normalize(x, "weight")


def test_num_groups_is_the_one_kind_to_groups_table():
    from course.norm_layers import GroupNorm, SpatialBatchNorm, make_norm
    from course.norms import KINDS, num_groups

    assert [num_groups(k, 8, 4) for k in KINDS] == [None, 1, 8, 4]
    layers = {k: make_norm(k, 8, 4) for k in KINDS}
    assert isinstance(layers["batch"], SpatialBatchNorm)
    assert [layers[k].G for k in KINDS[1:]] == [1, 8, 4] and isinstance(layers["layer"], GroupNorm)


def test_groupnorm_special_cases_are_layer_and_instance_norm():
    from course.norms import groupnorm_special_cases

    rng = np.random.default_rng(3)
    x = rng.normal(1.0, 2.0, (3, 4, 3, 3)) * rng.uniform(0.5, 4.0, (1, 4, 1, 1))
    assert max(groupnorm_special_cases(x)) < 1e-12
