"""Batch normalization across simulated devices: per-device BN, synchronised BN and ghost BN.

A data-parallel step splits one batch into K shards, one per device. Each "device" here is just
an entry of a Python list; a collective (all-gather, all-reduce) is an explicit reduction over
that list, so every number a real device would send is visible.
"""

from dataclasses import dataclass

import numpy as np

from course.batchnorm import (
    batchnorm_backward_alt,
    batchnorm_forward,
    ema_update,
    read_bn_param,
)
from course.norm_layers import BatchNorm1d

# ---------------------------------------------------------------------------------------------
# Statistics of one shard, and how K of them combine (Chan et al.'s parallel variance formula)


def shard_stats(x):
    """(count, mean, M2) of one shard: M2 = sum of squared deviations from the shard mean."""
    n = x.shape[0]
    mean = x.mean(axis=0)  # (D,)
    m2 = ((x - mean) ** 2).sum(axis=0)  # (D,)  centred first: no cancellation
    return n, mean, m2


def merge_stats(a, b):
    """Merge two (count, mean, M2) triples into the triple of the concatenated data."""
    na, mean_a, m2_a = a
    nb, mean_b, m2_b = b
    n = na + nb
    delta = mean_b - mean_a  # (D,)
    mean = mean_a + delta * (nb / n)  # (D,)  count-weighted, not a plain average
    # The spread of the two means adds to the within-shard spreads.
    m2 = m2_a + m2_b + delta**2 * (na * nb / n)  # (D,)
    return n, mean, m2


def all_gather_combine(stats):
    """What every device computes after an all-gather of the K triples: the global triple."""
    total = stats[0]
    for s in stats[1:]:
        total = merge_stats(total, s)  # associative: any order or tree gives the same result
    return total


def all_reduce_sum(values):
    """Sum of one array per device: what an all-reduce hands back to every device."""
    total = np.zeros_like(values[0])
    for v in values:
        total = total + v
    return total


def naive_sums_stats(shards):
    """Global mean and variance from all-reduced (count, sum x, sum x^2): cheap, but unstable."""
    n = sum(s.shape[0] for s in shards)
    s1 = all_reduce_sum([s.sum(axis=0) for s in shards])  # (D,)
    s2 = all_reduce_sum([(s * s).sum(axis=0) for s in shards])  # (D,)
    mean = s1 / n  # (D,)
    # E[x^2] - E[x]^2 subtracts two large, nearly equal numbers when |mean| >> std.
    return mean, s2 / n - mean**2


# ---------------------------------------------------------------------------------------------
# Synchronised BN: identical to BN over the concatenated batch


def sync_batchnorm_forward(shards, gamma, beta, bn_param):
    """BN of a batch split into shards (a list of (N_k, D) arrays) with global statistics."""
    p = read_bn_param(bn_param, shards[0].shape[1])
    if p.mode == "train":
        # Forward all-reduce: every device contributes (count, mean, M2); 2D + 1 numbers.
        n, mean, m2 = all_gather_combine([shard_stats(s) for s in shards])
        var = m2 / n  # (D,)  biased, like batchnorm_forward
        if not p.frozen:
            bn_param["running_mean"] = ema_update(p.running_mean, mean, p.momentum)  # (D,)
            bn_param["running_var"] = ema_update(p.running_var, var, p.momentum)  # (D,)
    else:
        n, mean, var = sum(s.shape[0] for s in shards), p.running_mean, p.running_var
    inv_std = 1.0 / np.sqrt(var + p.eps)  # (D,)
    x_hats = [(s - mean) * inv_std for s in shards]  # each (N_k, D), computed on its own device
    outs = [gamma * xh + beta for xh in x_hats]  # each (N_k, D)
    cache = {"x_hat": x_hats, "inv_std": inv_std, "gamma": gamma, "count": n}
    return outs, cache


def sync_batchnorm_backward(douts, cache):
    """Gradients of synchronised BN: dxs (one per shard), dgamma and dbeta (global sums)."""
    x_hats, inv_std, gamma, n = cache["x_hat"], cache["inv_std"], cache["gamma"], cache["count"]
    # Backward all-reduce: every device contributes sum(dout) and sum(dout * x_hat); 2D numbers.
    dbeta = all_reduce_sum([d.sum(axis=0) for d in douts])  # (D,)
    dgamma = all_reduce_sum([(d * xh).sum(axis=0) for d, xh in zip(douts, x_hats, strict=True)])
    # The closed-form BN gradient, with the global sums and the global count.
    dxs = [(gamma * inv_std / n) * (n * d - dbeta - xh * dgamma)  # (N_k, D)
           for d, xh in zip(douts, x_hats, strict=True)]
    return dxs, dgamma, dbeta


# ---------------------------------------------------------------------------------------------
# Per-device BN (no communication) and ghost BN (the same thing, chosen on purpose)


def per_shard_batchnorm_forward(shards, gamma, beta, bn_param):
    """Each shard normalised with its own statistics, as plain BN on K devices does."""
    p = read_bn_param(bn_param, shards[0].shape[1])
    outs, caches, means, variances = [], [], [], []
    for s in shards:
        # Each device has its own copy of the running statistics.
        out, cache = batchnorm_forward(s, gamma, beta, dict(bn_param))  # (N_k, D)
        outs.append(out)
        caches.append(cache)
        if p.mode == "train":
            means.append(cache["mu"])
            variances.append(cache["var"])
    if means and not p.frozen:
        # Devices drift apart; averaging their buffers once per step keeps one set of statistics.
        bn_param["running_mean"] = ema_update(p.running_mean, np.mean(means, axis=0), p.momentum)
        bn_param["running_var"] = ema_update(p.running_var, np.mean(variances, axis=0), p.momentum)
    return outs, caches


def per_shard_batchnorm_backward(douts, caches):
    """Gradients of per-shard BN: each shard on its own, then dgamma/dbeta summed (as DDP does)."""
    grads = [batchnorm_backward_alt(d, c) for d, c in zip(douts, caches, strict=True)]
    dxs = [g[0] for g in grads]
    return dxs, sum(g[1] for g in grads), sum(g[2] for g in grads)


def split_batch(x, ghost_size):
    """Consecutive virtual batches of ghost_size rows (the last one may be larger)."""
    k = max(1, x.shape[0] // ghost_size)
    return np.array_split(x, k)  # the remainder is spread over the first shards


class ShardedBatchNorm1d(BatchNorm1d):
    """BN over a batch split into shards: synchronised (sync=True) or per shard (ghost BN)."""

    def __init__(self, num_features, shards=None, ghost_size=None, sync=False, **kwargs):
        super().__init__(num_features, **kwargs)
        self.shards, self.ghost_size, self.sync = shards, ghost_size, sync

    def _split(self, x):
        if self.shards is not None:
            return np.array_split(x, self.shards)  # uneven shards when K does not divide N
        return split_batch(x, self.ghost_size)

    def forward(self, x):
        """Normalise x; in training, statistics come from the shards (synchronised or not)."""
        if not self.training:
            return super().forward(x)
        bn_param = self.bn_param()
        step = sync_batchnorm_forward if self.sync else per_shard_batchnorm_forward
        outs, self._cache = step(self._split(x), self.gamma, self.beta, bn_param)
        self.running_mean, self.running_var = bn_param["running_mean"], bn_param["running_var"]
        self._sizes = [len(o) for o in outs]
        return np.concatenate(outs)  # (N, D)

    def backward(self, dout):
        """Store dgamma, dbeta and return dx."""
        if not self.training:
            return super().backward(dout)
        douts = np.split(dout, np.cumsum(self._sizes)[:-1])
        step = sync_batchnorm_backward if self.sync else per_shard_batchnorm_backward
        dxs, self.dgamma, self.dbeta = step(douts, self._cache)
        return np.concatenate(dxs)  # (N, D)


def use_sharded_bn(model, **kwargs):
    """Replace every BN layer of a fresh course.mlp.MLP by a ShardedBatchNorm1d; return model."""
    for i, bn in enumerate(model.bn):
        if bn is not None:
            model.bn[i] = ShardedBatchNorm1d(len(bn.gamma), eps=bn.eps, momentum=bn.momentum,
                                             **kwargs)
    return model


# ---------------------------------------------------------------------------------------------
# What synchronisation costs


@dataclass(frozen=True)
class CommCost:
    """Numbers and bytes one BN layer exchanges per training step, per device."""

    forward_values: int  # (count, mean, M2) contributed by each device
    backward_values: int  # (sum dout, sum dout * x_hat) contributed by each device
    forward_bytes_sent: float  # ring all-gather: K - 1 blocks leave each device
    backward_bytes_sent: float  # ring all-reduce: 2 (K - 1) / K of the message
    collectives: int  # blocking calls in the critical path of the step

    @property
    def bytes_sent(self):
        """Total bytes each device sends per step for this layer."""
        return self.forward_bytes_sent + self.backward_bytes_sent


def sync_bn_comm_cost(channels, devices, bytes_per_value=4):
    """Communication of one synchronised BN layer with C channels on K devices, per step."""
    C, K = channels, devices
    fwd = 2 * C + 1  # mean and M2 per channel, plus one count (the same for every channel)
    bwd = 2 * C  # sum dout and sum dout * x_hat per channel
    return CommCost(forward_values=fwd, backward_values=bwd,
                    forward_bytes_sent=float((K - 1) * fwd * bytes_per_value),
                    backward_bytes_sent=2 * (K - 1) / K * bwd * bytes_per_value,
                    collectives=2 if K > 1 else 0)


def ring_all_reduce_bytes(values, devices, bytes_per_value=4):
    """Bytes each device sends to all-reduce `values` numbers with a ring (for comparison)."""
    return 2 * (devices - 1) / devices * values * bytes_per_value


def forward_exchange_bytes(channels, devices, bytes_per_value=4):
    """Bytes each device sends for the forward statistics, per step: raw sums (n, sum x, sum x^2)
    add up, so a ring all-reduce does; Chan's (n, mean, M2) merge is not a sum, so the summaries
    are all-gathered. Both start from 2C + 1 numbers per device: {"raw sums": B, "centred": B}."""
    values = 2 * channels + 1
    return {"raw sums": ring_all_reduce_bytes(values, devices, bytes_per_value),
            "centred": sync_bn_comm_cost(channels, devices, bytes_per_value).forward_bytes_sent}


# ---------------------------------------------------------------------------------------------
# How noisy are batch statistics?


def batch_stat_noise(x, batch_sizes, n_batches=400, seed=0):
    """Spread (std over random batches) of the batch mean and batch std, averaged over features.

    Returns {B: (sd of batch mean, sd of batch std)} in units of each feature's own std.
    """
    rng = np.random.default_rng(seed)
    sd = x.std(axis=0)  # (D,)
    keep = sd > 0  # constant features have no spread to normalise by
    x = x[:, keep] / sd[keep]  # (N, D')  unit variance, so the numbers are comparable
    result = {}
    for B in batch_sizes:
        idx = np.stack([rng.choice(len(x), size=B, replace=False) for _ in range(n_batches)])
        batches = x[idx]  # (n_batches, B, D')
        means = batches.mean(axis=1)  # (n_batches, D')
        stds = batches.std(axis=1)  # (n_batches, D')
        result[B] = (float(means.std(axis=0).mean()), float(stds.std(axis=0).mean()))
    return result
