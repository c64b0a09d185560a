"""Synchronised BN equals full-batch BN on any split; per-device and ghost BN; what sync costs."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from course.batchnorm import batchnorm_backward, batchnorm_forward
from course.gradcheck import numerical_gradient_array, rel_error
from course.mlp import MLP
from course.optim import SGD
from course.sync_bn import (
    ShardedBatchNorm1d,
    all_gather_combine,
    batch_stat_noise,
    forward_exchange_bytes,
    merge_stats,
    naive_sums_stats,
    per_shard_batchnorm_forward,
    ring_all_reduce_bytes,
    shard_stats,
    split_batch,
    sync_batchnorm_backward,
    sync_batchnorm_forward,
    sync_bn_comm_cost,
    use_sharded_bn,
)
from course.train import train


@st.composite
def split_batches(draw, max_n=24):
    """A random (N, D) batch, random gamma/beta, and a random split into non-empty uneven shards."""
    N = draw(st.integers(2, max_n))
    cuts = sorted(draw(st.sets(st.integers(1, N - 1), max_size=min(6, N - 1))))
    seed = draw(st.integers(0, 2**32 - 1))
    D = draw(st.integers(1, 5))
    rng = np.random.default_rng(seed)
    x = rng.normal(rng.normal(0, 3, D), rng.uniform(0.1, 4, D), (N, D))  # (N, D)
    return x, cuts, rng.normal(1, 0.7, D), rng.normal(0, 1, D), rng


def _split(a, cuts):
    return np.split(a, cuts)


@given(split_batches(), st.sampled_from([1e-5, 1e-2]), st.sampled_from([0.0, 0.9]))
def test_sync_forward_equals_full_batch_bn(batch, eps, momentum):
    x, cuts, gamma, beta, rng = batch
    D = x.shape[1]
    rm, rv = rng.normal(size=D), rng.uniform(0.5, 2, D)
    p_sync = {"mode": "train", "eps": eps, "momentum": momentum, "running_mean": rm,
              "running_var": rv}
    p_full = dict(p_sync)
    outs, _ = sync_batchnorm_forward(_split(x, cuts), gamma, beta, p_sync)
    want, _ = batchnorm_forward(x, gamma, beta, p_full)
    assert [len(o) for o in outs] == [len(s) for s in _split(x, cuts)]
    np.testing.assert_allclose(np.concatenate(outs), want, rtol=1e-12, atol=1e-12)
    for key in ("running_mean", "running_var"):
        np.testing.assert_allclose(p_sync[key], p_full[key], rtol=1e-12, atol=1e-12)


@given(split_batches())
def test_sync_backward_equals_full_batch_bn(batch):
    x, cuts, gamma, beta, rng = batch
    dout = rng.normal(size=x.shape)  # (N, D)
    _, cache = sync_batchnorm_forward(_split(x, cuts), gamma, beta, {"mode": "train"})
    dxs, dgamma, dbeta = sync_batchnorm_backward(_split(dout, cuts), cache)
    _, ref_cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx_ref, dgamma_ref, dbeta_ref = batchnorm_backward(dout, ref_cache)
    np.testing.assert_allclose(np.concatenate(dxs), dx_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dgamma, dgamma_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dbeta, dbeta_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cuts", [[1], [2, 3, 7], [5, 6]])
def test_sync_backward_passes_a_numerical_gradient_check(cuts):
    rng = np.random.default_rng(len(cuts))
    x = rng.normal(2.0, 1.5, (9, 4))  # (N, D)
    gamma, beta, dout = rng.normal(1, 0.5, 4), rng.normal(size=4), rng.normal(size=(9, 4))

    def f(x_, g_, b_):
        return np.concatenate(sync_batchnorm_forward(_split(x_, cuts), g_, b_,
                                                     {"mode": "train"})[0])

    _, cache = sync_batchnorm_forward(_split(x, cuts), gamma, beta, {"mode": "train"})
    dxs, dgamma, dbeta = sync_batchnorm_backward(_split(dout, cuts), cache)
    assert rel_error(np.concatenate(dxs),
                     numerical_gradient_array(lambda v: f(v, gamma, beta), x, dout)) < 1e-8
    assert rel_error(dgamma, numerical_gradient_array(lambda v: f(x, v, beta), gamma, dout)) < 1e-8
    assert rel_error(dbeta, numerical_gradient_array(lambda v: f(x, gamma, v), beta, dout)) < 1e-8


def test_sync_test_mode_uses_running_statistics_without_communication():
    rng = np.random.default_rng(0)
    x, gamma, beta = rng.normal(size=(7, 3)), rng.normal(size=3), rng.normal(size=3)
    stats = {"running_mean": rng.normal(size=3), "running_var": rng.uniform(0.5, 2, 3)}
    outs, _ = sync_batchnorm_forward(_split(x, [2]), gamma, beta, {"mode": "test", **stats})
    want, _ = batchnorm_forward(x, gamma, beta, {"mode": "test", **stats})
    np.testing.assert_allclose(np.concatenate(outs), want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError):
        sync_batchnorm_forward([x], gamma, beta, {"mode": "eval"})


@given(split_batches(max_n=16))
def test_merging_shard_stats_is_order_independent_and_exact(batch):
    x, cuts, *_ = batch
    stats = [shard_stats(s) for s in _split(x, cuts)]
    n, mean, m2 = all_gather_combine(stats)
    n_r, mean_r, m2_r = all_gather_combine(stats[::-1])
    assert n == n_r == len(x)
    np.testing.assert_allclose(mean, x.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m2, ((x - x.mean(0)) ** 2).sum(0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(mean_r, mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m2_r, m2, rtol=1e-10, atol=1e-10)


def test_chan_merge_is_stable_where_naive_sums_cancel():
    rng = np.random.default_rng(0)
    shards = [1e8 + rng.normal(size=(n, 2)) for n in (5, 11, 8)]  # mean 1e8, std 1
    x = np.concatenate(shards)
    true_var = ((x - x.mean(0)) ** 2).mean(0)
    n, _, m2 = all_gather_combine([shard_stats(s) for s in shards])
    _, naive_var = naive_sums_stats(shards)
    assert np.max(np.abs(m2 / n - true_var) / true_var) < 1e-6
    assert np.max(np.abs(naive_var - true_var) / true_var) > 1e-2


def test_merge_weights_by_count_not_by_shard():
    a, b = np.array([[0.0], [0.0], [0.0]]), np.array([[4.0]])
    n, mean, m2 = merge_stats(shard_stats(a), shard_stats(b))
    assert n == 4
    np.testing.assert_allclose(mean, [1.0])  # not (0 + 4) / 2
    np.testing.assert_allclose(m2, [12.0])  # 3 * 1^2 + 3^2: the spread of the means counts


def test_per_shard_bn_normalises_each_shard_on_its_own():
    rng = np.random.default_rng(4)
    shards = [rng.normal(size=(n, 3)) + k for k, n in enumerate((4, 6))]
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    outs, _ = per_shard_batchnorm_forward(shards, gamma, beta, {"mode": "train"})
    for s, o in zip(shards, outs, strict=True):
        np.testing.assert_allclose(o, batchnorm_forward(s, gamma, beta, {})[0], rtol=1e-12)


@given(N=st.integers(4, 30), ghost=st.integers(2, 12), seed=st.integers(0, 2**32 - 1))
def test_split_batch_keeps_every_row_in_order(N, ghost, seed):
    x = np.random.default_rng(seed).normal(size=(N, 2))
    parts = split_batch(x, ghost)
    np.testing.assert_array_equal(np.concatenate(parts), x)
    assert len(parts) == max(1, N // ghost)
    assert all(len(p) >= min(ghost, N) for p in parts)


def test_ghost_bn_with_one_ghost_batch_is_plain_bn():
    rng = np.random.default_rng(5)
    x, gamma, beta = rng.normal(size=(10, 3)), rng.normal(size=3), rng.normal(size=3)
    layer, p_f = ShardedBatchNorm1d(3, ghost_size=10), {}
    layer.gamma, layer.beta = gamma, beta
    want, _ = batchnorm_forward(x, gamma, beta, p_f)
    np.testing.assert_allclose(layer.forward(x), want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.running_var, p_f["running_var"], rtol=1e-12)


def test_ghost_bn_backward_passes_a_numerical_gradient_check():
    rng = np.random.default_rng(6)
    x = rng.normal(1.0, 2.0, (11, 3))  # ghost size 4: 11 // 4 = 2 virtual batches, of 6 and 5
    gamma, beta, dout = rng.normal(1, 0.5, 3), rng.normal(size=3), rng.normal(size=(11, 3))

    def f(x_, g_, b_):  # ghost BN: per-shard BN over consecutive virtual batches of about 4
        return np.concatenate(per_shard_batchnorm_forward(split_batch(x_, 4), g_, b_, {})[0])

    _, caches = per_shard_batchnorm_forward(split_batch(x, 4), gamma, beta, {})
    assert [c["x"].shape[0] for c in caches] == [6, 5]
    layer = ShardedBatchNorm1d(3, ghost_size=4)  # the layer that trains with ghost BN
    layer.gamma, layer.beta = gamma, beta
    np.testing.assert_array_equal(layer.forward(x), f(x, gamma, beta))
    dx = layer.backward(dout)
    dgamma, dbeta = layer.dgamma, layer.dbeta
    assert rel_error(dx, numerical_gradient_array(lambda v: f(v, gamma, beta), x, dout)) < 1e-8
    assert rel_error(dgamma, numerical_gradient_array(lambda v: f(x, v, beta), gamma, dout)) < 1e-8
    assert rel_error(dbeta, numerical_gradient_array(lambda v: f(x, gamma, v), beta, dout)) < 1e-8


def _digits_like(seed=0, N=96):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, 8)), rng.integers(0, 3, N)


def _train_losses(epochs, **sharding):
    """Loss per step of a small BN MLP on _digits_like, with its BN sharded as given (if any)."""
    X, y = _digits_like()
    model = MLP([8, 6, 5, 3], batchnorm=True, seed=1)
    if sharding:
        use_sharded_bn(model, **sharding)
        assert isinstance(model.bn[0], ShardedBatchNorm1d)
    return train(model, X, y, X, y, SGD(0.1), epochs=epochs, batch_size=32, seed=0).loss


def test_training_with_sync_bn_on_uneven_shards_matches_plain_bn():
    # Batch 32 in 5 shards: 7, 7, 6, 6, 6 examples.
    np.testing.assert_allclose(_train_losses(2), _train_losses(2, shards=5, sync=True), rtol=1e-10)


def test_per_device_bn_training_differs_from_sync_bn():
    losses = [_train_losses(1, shards=8, sync=sync) for sync in (True, False)]
    assert np.max(np.abs(np.subtract(*losses))) > 1e-3


def test_comm_cost_exact_values():
    cost = sync_bn_comm_cost(channels=64, devices=8)
    assert (cost.forward_values, cost.backward_values) == (129, 128)
    assert cost.forward_bytes_sent == 7 * 129 * 4 == 3612
    assert cost.backward_bytes_sent == 2 * 7 / 8 * 128 * 4 == 896
    assert cost.bytes_sent == 4508
    assert cost.collectives == 2
    half = sync_bn_comm_cost(channels=3, devices=2, bytes_per_value=2)
    assert (half.forward_bytes_sent, half.backward_bytes_sent) == (14, 12)
    alone = sync_bn_comm_cost(channels=64, devices=1)
    assert alone.bytes_sent == 0 and alone.collectives == 0
    assert ring_all_reduce_bytes(64 * 64, 8) == 2 * 7 / 8 * 4096 * 4 == 28672


@pytest.mark.parametrize("channels, devices", [(64, 8), (64, 64), (3, 2), (1024, 16)])
def test_centred_summaries_send_K_over_2_times_the_raw_sums(channels, devices):
    # Same 2C + 1 numbers per device, but an all-gather sends K - 1 blocks where a ring all-reduce
    # sends 2 (K - 1) / K of one: the ratio is K / 2, whatever C.
    cost = forward_exchange_bytes(channels, devices)
    assert cost["raw sums"] == pytest.approx(2 * (devices - 1) / devices * (2 * channels + 1) * 4)
    assert cost["centred"] == (devices - 1) * (2 * channels + 1) * 4
    assert cost["centred"] / cost["raw sums"] == pytest.approx(devices / 2)


def test_batch_stat_noise_follows_sampling_theory():
    x = np.random.default_rng(0).normal(size=(4000, 6))
    noise = batch_stat_noise(x, [4, 64], n_batches=400, seed=1)
    for B, (sd_mean, _) in noise.items():
        # Sampling without replacement from N rows: sd of the mean is sqrt((N - B)/(N - 1) / B).
        theory = np.sqrt((4000 - B) / 3999 / B)
        assert abs(sd_mean / theory - 1) < 0.1
    assert noise[4][1] > 3 * noise[64][1]  # the batch std is much noisier for small batches
