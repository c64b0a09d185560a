"""Wrong answers nobody catalogued, correct answers written unusually, and the rule that a check
never names a cause its case does not have.

Each wrong answer below is a slip a student could make (none is a Mistake of its task); each
comes with the words its check must print in every failing case, or with LOCATED when no
single cause can be read off the outputs and the check must say only which outputs and
properties are off. Every correct answer written unusually (a loop, einsum, another cache, a
tuple for a list) must pass.
"""

import dataclasses
import inspect

import numpy as np
import pytest
from test_tasks import UNLISTED as OLDER_UNLISTED

from course import norms
from course.batch_renorm import D_MAX, R_MAX
from course.batchnorm import (
    DEFAULT_EPS,
    DEFAULT_MOMENTUM,
    batchnorm_backward_alt,
    batchnorm_forward,
)
from course.bn_net import bn_net_loss
from course.checks import check
from course.layers import affine_backward, affine_forward, relu_backward, relu_forward
from course.rmsnorm import rmsnorm_backward
from course.running_stats import pytorch_running_update
from course.sync_bn import sync_batchnorm_backward, sync_batchnorm_forward
from course.tasks import all_tasks, evaluate_all, get, nb03, nb05, nb07, run_case

SEEDS = (0, 1, 2, 2024)
LOCATED = None  # the check must name no cause (and say which outputs/properties are off)


class Not(str):
    """Words the message must NOT hold (a cause the case does not have)."""


def _eps(p):
    return p.get("eps", DEFAULT_EPS)


def _verdicts(task, impl, seed):
    cases = task.cases(seed)
    return evaluate_all(task, cases, [run_case(task, impl, c) for c in cases])


# ---------------------------------------------------------------- 01 saturation_fraction
def sat_at_or_above(z, threshold=4.0):
    return float(np.mean(np.abs(z) >= threshold))


def sat_lower_tail(z, threshold=4.0):
    return float(np.mean(z < -threshold))


def sat_per_row(z, threshold=4.0):
    return float(np.sum(np.abs(z) > threshold) / z.shape[0])


def sat_squares(z, threshold=4.0):  # correct: z² > t² is |z| > t
    return float(np.mean(z**2 > threshold**2))


def sat_loop(z, threshold=4.0):  # correct: a loop over entries, both tails counted apart
    count = 0
    for v in np.ravel(z):
        count += (v > threshold) + (v < -threshold)
    return count / z.size


def sat_mean_compared(z, threshold=4.0):  # a comparison of the mean, not a fraction
    return float(np.mean(np.abs(z)) > threshold)


# ---------------------------------------------------------------- 01 standardize
def std_eps_ignored(x, eps=DEFAULT_EPS):
    return (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5)


def std_eps_tiny_default(x, eps=1e-8):
    return (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)


def std_eps_hard_coded(x, eps=DEFAULT_EPS):
    return (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-4)


def std_eps_squared(x, eps=DEFAULT_EPS):
    return (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps**2)


def std_spread_whole(x, eps=DEFAULT_EPS):
    return (x - x.mean(axis=0)) / np.sqrt(x.var() + eps)


def std_not_centred(x, eps=DEFAULT_EPS):
    return x / np.sqrt(x.var(axis=0) + eps)


def std_rounded(x, eps=DEFAULT_EPS):
    return np.round((x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps), 3)


def std_one_pass(x, eps=DEFAULT_EPS):  # E[x²] − E[x]²: cancels for a feature near 1e6
    mu = x.mean(axis=0)
    return (x - mu) / np.sqrt((x**2).mean(axis=0) - mu**2 + eps)


def std_einsum(x, eps=DEFAULT_EPS):  # correct
    N = x.shape[0]
    mu = np.einsum("nd->d", x) / N
    xc = x - mu
    return xc / np.sqrt(np.einsum("nd,nd->d", xc, xc) / N + eps)


def std_loop(x, eps=DEFAULT_EPS):  # correct: one feature at a time
    out = np.empty_like(x)
    for j in range(x.shape[1]):
        col = x[:, j]
        out[:, j] = (col - col.mean()) / np.sqrt(col.var() + eps)
    return out


# ---------------------------------------------------------------- 02 batchnorm_forward
def fwd_beta_inside(x, gamma, beta, bn_param):
    x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + _eps(bn_param))
    return gamma * (x_hat + beta), {}


def fwd_float32_out(x, gamma, beta, bn_param):
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    return out.astype(np.float32), cache


def fwd_mean_per_example(x, gamma, beta, bn_param):
    x_hat = (x - x.mean(axis=1, keepdims=True)) / np.sqrt(x.var(axis=0) + _eps(bn_param))
    return gamma * x_hat + beta, {}


def fwd_one_pass(x, gamma, beta, bn_param):
    mu = x.mean(axis=0)
    var = (x**2).mean(axis=0) - mu**2
    return gamma * (x - mu) / np.sqrt(var + _eps(bn_param)) + beta, {}


def fwd_var_over_n_plus_1(x, gamma, beta, bn_param):  # axis right, the spread off
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).sum(axis=0) / (len(x) + 1)
    return gamma * (x - mu) / np.sqrt(var + _eps(bn_param)) + beta, {}


def fwd_complex(x, gamma, beta, bn_param):
    mu = x.mean(axis=0)
    var = (x**2).mean(axis=0) - mu**2  # can dip below 0 …
    return gamma * (x - mu) / np.emath.sqrt(var + _eps(bn_param) - 1.0) + beta, {}


def fwd_einsum(x, gamma, beta, bn_param):  # correct, with a cache of its own
    N = x.shape[0]
    xc = x - np.einsum("nd->d", x) / N
    inv = 1 / np.sqrt(np.einsum("nd,nd->d", xc, xc) / N + _eps(bn_param))
    return np.einsum("d,nd,d->nd", gamma, xc, inv) + beta, ("anything", inv)


def fwd_loop(x, gamma, beta, bn_param):  # correct: one feature at a time, in place on a copy
    out = np.array(x, dtype=float)
    for j in range(x.shape[1]):
        out[:, j] -= out[:, j].mean()
        out[:, j] /= np.sqrt((out[:, j] ** 2).mean() + _eps(bn_param))
        out[:, j] = gamma[j] * out[:, j] + beta[j]
    return out, None


# ---------------------------------------------------------------- 03 staged backward
def _nodes(cache):
    return (cache[k] for k in ("x_hat", "gamma", "xmu", "var", "eps", "inv_std"))


def staged_dvar_without_var(dout, cache):
    # dvar misses the 1/(var + eps) of d(1/σ)/dσ: the path through σ² is off per feature.
    x_hat, gamma, xmu, var, eps, inv_std = _nodes(cache)
    N = dout.shape[0]
    dx_hat = dout * gamma
    dvar = -(dx_hat * xmu).sum(0) * 0.5 / np.sqrt(var + eps)
    dxmu = dx_hat * inv_std + 2 * xmu * dvar / N
    return dxmu - dxmu.mean(0), (dout * x_hat).sum(0), dout.sum(0)


def staged_dsq_not_shared(dout, cache):
    x_hat, gamma, xmu, var, eps, inv_std = _nodes(cache)
    dx_hat = dout * gamma
    dvar = -(dx_hat * xmu).sum(0) / (var + eps) * 0.5 / np.sqrt(var + eps)
    dxmu = dx_hat * inv_std + 2 * xmu * dvar  # dsq = dvar, not dvar / N
    return dxmu - dxmu.mean(0), (dout * x_hat).sum(0), dout.sum(0)


def staged_dgamma_with_x(dout, cache):
    dx, _, dbeta = batchnorm_backward_alt(dout, cache)
    return dx, (dout * cache["x"]).sum(0), dbeta


def staged_no_eps(dout, cache):
    # 1/sqrt(var) rebuilt from the cache's var, without ε: wrong where var is comparable to ε
    x_hat, gamma, xmu, var, eps, _ = _nodes(cache)
    inv = 1 / np.sqrt(var)
    N = dout.shape[0]
    dx_hat = dout * gamma
    dvar = -(dx_hat * xmu).sum(0) * inv**3 * 0.5
    dxmu = dx_hat * inv + 2 * xmu * dvar / N
    return dxmu - dxmu.mean(0), (dout * x_hat).sum(0), dout.sum(0)


def staged_einsum(dout, cache):  # correct: every sum an einsum
    x_hat, gamma, xmu, var, eps, inv_std = _nodes(cache)
    N = dout.shape[0]
    dx_hat = dout * gamma
    dvar = -0.5 * np.einsum("nd,nd->d", dx_hat, xmu) * (var + eps) ** -1.5
    dxmu = dx_hat * inv_std + 2 * xmu * dvar / N
    dx = dxmu - np.einsum("nd->d", dxmu) / N
    return dx, np.einsum("nd,nd->d", dout, x_hat), np.einsum("nd->d", dout)


def staged_from_x(dout, cache):  # correct: recomputes what it needs from cache['x'] alone
    x, gamma, eps = cache["x"], cache["gamma"], cache["eps"]
    xmu = x - x.mean(0)
    var = (xmu**2).mean(0)
    x_hat = xmu / np.sqrt(var + eps)
    g = dout * gamma
    dx = (g - g.mean(0) - x_hat * (g * x_hat).mean(0)) / np.sqrt(var + eps)
    return dx, (dout * x_hat).sum(0), dout.sum(0)


# ---------------------------------------------------------------- 03 closed form
def _closed_parts(dout, cache):
    return cache["x_hat"], cache["gamma"], cache["inv_std"], dout.shape[0]


def closed_mean_term_times_N(dout, cache):
    x_hat, gamma, inv_std, N = _closed_parts(dout, cache)
    db, dg = dout.sum(0), (dout * x_hat).sum(0)
    return gamma * inv_std / N * (N * dout - N * db - x_hat * dg), dg, db


def closed_prefactor_var(dout, cache):
    x_hat, gamma, inv_std, N = _closed_parts(dout, cache)
    db, dg = dout.sum(0), (dout * x_hat).sum(0)
    return gamma * inv_std**2 / N * (N * dout - db - x_hat * dg), dg, db


def closed_var_term_with_x(dout, cache):
    x_hat, gamma, inv_std, N = _closed_parts(dout, cache)
    db = dout.sum(0)
    dg = (dout * x_hat).sum(0)
    return gamma * inv_std / N * (N * dout - db - cache["x"] * dg), dg, db


def closed_loop(dout, cache):  # correct: one feature at a time
    x_hat, gamma, inv_std, N = _closed_parts(dout, cache)
    dx = np.empty_like(dout)
    for j in range(dout.shape[1]):
        d, xh = dout[:, j], x_hat[:, j]
        dx[:, j] = gamma[j] * inv_std[j] / N * (N * d - d.sum() - xh * (d * xh).sum())
    return dx, (dout * x_hat).sum(0), dout.sum(0)


def closed_means(dout, cache):  # correct: means instead of sums over N
    x_hat, gamma, inv_std, _ = _closed_parts(dout, cache)
    dx = gamma * inv_std * (dout - dout.mean(0) - x_hat * (dout * x_hat).mean(0))
    return dx, (dout * x_hat).sum(0), dout.sum(0)


# ---------------------------------------------------------------- 04 batchnorm_forward (modes)
def _modes(x, gamma, beta, bn_param, *, feed_var=lambda x: x.var(0), keep_var=None,
           write_var=True, test_var=None, test_mean=None):
    """A train/test forward with knobs for one slip each (all None: correct)."""
    eps, m = _eps(bn_param), bn_param.get("momentum", DEFAULT_MOMENTUM)
    D = x.shape[1]
    rm = bn_param.get("running_mean", np.zeros(D))
    rv = bn_param.get("running_var", np.ones(D))
    if bn_param.get("mode", "train") == "train":
        mu, var = x.mean(0), x.var(0)
        bn_param["running_mean"] = m * rm + (1 - m) * mu
        k = m if keep_var is None else keep_var(m)
        if write_var:
            bn_param["running_var"] = k * rv + (1 - k) * feed_var(x)
        return gamma * (x - mu) / np.sqrt(var + eps) + beta, {}
    c = rm if test_mean is None else test_mean(x)
    v = rv if test_var is None else test_var(x)
    return gamma * (x - c) / np.sqrt(v + eps) + beta, {}


def modes_test_rescaled_running_var(x, gamma, beta, bn_param):  # running buffers, rescaled
    if bn_param.get("mode", "train") == "train":
        return _modes(x, gamma, beta, bn_param)
    D, n = x.shape[1], max(len(x), 2)
    rm = bn_param.get("running_mean", np.zeros(D))
    rv = bn_param.get("running_var", np.ones(D)) * n / (n - 1)
    return gamma * (x - rm) / np.sqrt(rv + _eps(bn_param)) + beta, {}


def modes_test_batch_var(x, gamma, beta, bn_param):
    return _modes(x, gamma, beta, bn_param, test_var=lambda x: x.var(0))


def modes_var_not_written(x, gamma, beta, bn_param):
    return _modes(x, gamma, beta, bn_param, write_var=False)


def modes_running_std(x, gamma, beta, bn_param):
    return _modes(x, gamma, beta, bn_param, feed_var=lambda x: x.std(0))


def modes_var_momentum_reversed(x, gamma, beta, bn_param):
    return _modes(x, gamma, beta, bn_param, keep_var=lambda m: 1 - m)


def modes_fresh_keyerror(x, gamma, beta, bn_param):
    if bn_param.get("mode") == "test":
        rm, rv = bn_param["running_mean"], bn_param["running_var"]
        return gamma * (x - rm) / np.sqrt(rv + _eps(bn_param)) + beta, {}
    return _modes(x, gamma, beta, bn_param)


def modes_setdefault(x, gamma, beta, bn_param):  # correct: buffers made with setdefault
    D = x.shape[1]
    rm = bn_param.setdefault("running_mean", np.zeros(D))
    rv = bn_param.setdefault("running_var", np.ones(D))
    eps, m = bn_param.get("eps", DEFAULT_EPS), bn_param.get("momentum", DEFAULT_MOMENTUM)
    if bn_param["mode"] == "test":
        return gamma * (x - rm) / np.sqrt(rv + eps) + beta, {}
    mu, var = np.add.reduce(x, 0) / len(x), np.add.reduce((x - x.mean(0)) ** 2, 0) / len(x)
    bn_param["running_mean"] = rm + (1 - m) * (mu - rm)  # the same average, rearranged
    bn_param["running_var"] = rv + (1 - m) * (var - rv)
    return gamma * (x - mu) / np.sqrt(var + eps) + beta, {"mode": "train"}


def modes_tuple_cache(x, gamma, beta, bn_param):  # correct, returns a tuple cache
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    return out, tuple(cache.values()) if isinstance(cache, dict) else cache


# ---------------------------------------------------------------- 04 pytorch_running_update
def torch_float32(running_mean, running_var, x, momentum):
    rm, rv = pytorch_running_update(running_mean, running_var, x, momentum)
    return rm.astype(np.float32), rv.astype(np.float32)


def torch_replaced(running_mean, running_var, x, momentum):
    return x.mean(0), x.var(0, ddof=1)


def torch_one_pass(running_mean, running_var, x, momentum):
    N = x.shape[0]
    mu = x.mean(0)
    var = ((x**2).sum(0) - N * mu**2) / (N - 1)  # cancels for a feature near 1e6
    return (1 - momentum) * running_mean + momentum * mu, (1 - momentum) * running_var + \
        momentum * var


def torch_std(running_mean, running_var, x, momentum):
    return ((1 - momentum) * running_mean + momentum * x.mean(0),
            (1 - momentum) * running_var + momentum * x.std(0, ddof=1))


def torch_mean_per_example(running_mean, running_var, x, momentum):
    mu, var = x.mean(axis=1), x.var(axis=0, ddof=1)
    return (1 - momentum) * running_mean + momentum * mu, \
        (1 - momentum) * running_var + momentum * var


def torch_loop(running_mean, running_var, x, momentum):  # correct: per feature, M2 / (N − 1)
    rm, rv = np.array(running_mean, dtype=float), np.array(running_var, dtype=float)
    for j in range(x.shape[1]):
        col = x[:, j]
        m2 = ((col - col.mean()) ** 2).sum()
        rm[j] += momentum * (col.mean() - rm[j])
        rv[j] += momentum * (m2 / (len(col) - 1) - rv[j])
    return rm, rv


def torch_einsum(running_mean, running_var, x, momentum):  # correct, with einsum
    n = x.shape[0]
    mu = np.einsum("nd->d", x) / n  # (D,)
    centred = x - mu  # (N, D)
    var = np.einsum("nd,nd->d", centred, centred) / (n - 1)  # (D,)
    return (1 - momentum) * running_mean + momentum * mu, \
        (1 - momentum) * running_var + momentum * var


def torch_tuple_of_lists(running_mean, running_var, x, momentum):  # right numbers, plain lists
    rm, rv = pytorch_running_update(running_mean, running_var, x, momentum)
    return list(rm), list(rv)


# ---------------------------------------------------------------- 05 spatial batch norm
def _rows(a):
    N, C, H, W = a.shape
    return a.transpose(0, 2, 3, 1).reshape(-1, C)


def spatial_dx_layout(dout, cache):
    # dx computed on the (N*H*W, C) rows, then put back with a plain reshape
    bn_cache, (N, C, H, W) = cache
    dx, dg, db = batchnorm_backward_alt(_rows(dout), bn_cache)
    return dx.reshape(N, C, H, W), dg, db


def spatial_running_unbiased(x, gamma, beta, bn_param):
    out, cache = norms.spatial_batchnorm_forward(x, gamma, beta, bn_param)
    if bn_param.get("mode", "train") == "train":
        rows = _rows(x)
        n, m = len(rows), bn_param.get("momentum", DEFAULT_MOMENTUM)
        bn_param["running_var"] = (bn_param["running_var"] - (1 - m) * rows.var(0)
                                   + (1 - m) * rows.var(0) * n / (n - 1))
    return out, cache


def spatial_divided_by_gamma(x, gamma, beta, bn_param):
    g = gamma.reshape(1, -1, 1, 1)
    out, cache = norms.spatial_batchnorm_forward(x, np.ones_like(gamma), np.zeros_like(beta),
                                                 bn_param)
    return out / g + beta.reshape(1, -1, 1, 1), cache


def spatial_test_no_eps(x, gamma, beta, bn_param):
    if bn_param.get("mode") == "test":
        C = x.shape[1]
        rm = bn_param["running_mean"].reshape(1, C, 1, 1)
        rv = bn_param["running_var"].reshape(1, C, 1, 1)
        return gamma.reshape(1, C, 1, 1) * (x - rm) / np.sqrt(rv) + beta.reshape(1, C, 1, 1), None
    return norms.spatial_batchnorm_forward(x, gamma, beta, bn_param)


def spatial_moveaxis(x, gamma, beta, bn_param):  # correct: moveaxis, buffers kept (1, C, 1, 1)
    C = x.shape[1]
    rows = np.moveaxis(x, 1, -1).reshape(-1, C)
    p = dict(bn_param)
    for k in ("running_mean", "running_var"):
        if k in p:
            p[k] = np.ravel(p[k])
    out, cache = batchnorm_forward(rows, gamma, beta, p)
    for k in ("running_mean", "running_var"):
        bn_param[k] = p[k].reshape(1, C, 1, 1)
    return np.moveaxis(out.reshape(x.shape[0], x.shape[2], x.shape[3], C), -1, 1), \
        (cache, x.shape)


def spatial_moveaxis_backward(dout, cache):  # correct, the pair of the one above
    bn_cache, (N, C, H, W) = cache
    dx, dg, db = batchnorm_backward_alt(np.moveaxis(dout, 1, -1).reshape(-1, C), bn_cache)
    return np.moveaxis(dx.reshape(N, H, W, C), -1, 1), dg, db


def spatial_nt_forward(x, gamma, beta, bn_param):  # x.reshape(-1, C), no transpose
    out, cache = batchnorm_forward(x.reshape(-1, x.shape[1]), gamma, beta, bn_param)
    return out.reshape(x.shape), (cache, x.shape)


def spatial_nt_backward_only(dout, cache):  # dout.reshape(-1, C); dbeta summed right
    bn_cache, (N, C, H, W) = cache
    dx, dg, _ = batchnorm_backward_alt(dout.reshape(-1, C), bn_cache)
    return dx.reshape(N, C, H, W), dg, dout.sum(axis=(0, 2, 3))


def spatial_einsum_backward(dout, cache):  # correct: per-channel sums with einsum
    bn_cache, (N, C, H, W) = cache
    x_hat = bn_cache["x_hat"].reshape(N, H, W, C).transpose(0, 3, 1, 2)  # (N, C, H, W)
    M = N * H * W
    db = np.einsum("nchw->c", dout)
    dg = np.einsum("nchw,nchw->c", dout, x_hat)
    k = (bn_cache["gamma"] * bn_cache["inv_std"] / M).reshape(1, C, 1, 1)
    dx = k * (M * dout - db.reshape(1, C, 1, 1) - x_hat * dg.reshape(1, C, 1, 1))
    return dx, dg, db


# ---------------------------------------------------------------- 05 layer norm
def ln_spread_over_batch(x, gamma, beta, ln_param):
    out, cache = norms.layernorm_forward(x, gamma, beta, ln_param)
    xc = x - x.mean(axis=1, keepdims=True)
    return gamma * xc / np.sqrt(x.var(axis=0) + _eps(ln_param)) + beta, cache


def ln_dgamma_per_example(dout, cache):
    dx, dg, db = norms.layernorm_backward(dout, cache)
    return dx, (dout * cache["x_hat"]).sum(axis=1), db


def ln_var_term_summed(dout, cache):
    x_hat, gamma = cache["x_hat"], cache["gamma"]
    inv = cache["rows"]["inv_std"][:, None]  # (N, 1)
    g = dout * gamma
    dx = inv * (g - g.mean(1, keepdims=True) - x_hat * (g * x_hat).sum(1, keepdims=True))
    return dx, (dout * x_hat).sum(0), dout.sum(0)


def ln_dx_hat_without_gamma(dout, cache):  # dx̂ = dout where dout·γ belongs
    x_hat, inv = cache["x_hat"], cache["rows"]["inv_std"][:, None]  # (N, D), (N, 1)
    dx = inv * (dout - dout.mean(1, keepdims=True)
                - x_hat * (dout * x_hat).mean(1, keepdims=True))
    return dx, (dout * x_hat).sum(0), dout.sum(0)


def ln_loop_forward(x, gamma, beta, ln_param):  # correct: one example at a time
    out = np.empty_like(x)
    x_hat = np.empty_like(x)
    for i, row in enumerate(x):
        x_hat[i] = (row - row.mean()) / np.sqrt(row.var() + _eps(ln_param))
        out[i] = gamma * x_hat[i] + beta
    return out, {"x_hat": x_hat, "gamma": gamma,
                 "inv": 1 / np.sqrt(x.var(axis=1, keepdims=True) + _eps(ln_param))}


def ln_loop_backward(dout, cache):  # correct: the pair of the one above
    x_hat, gamma, inv = cache["x_hat"], cache["gamma"], cache["inv"]
    g = dout * gamma
    dx = inv * (g - g.mean(1, keepdims=True) - x_hat * (g * x_hat).mean(1, keepdims=True))
    return dx, (dout * x_hat).sum(0), dout.sum(0)


def ln_transposed_bn(x, gamma, beta, ln_param):  # correct: batch norm of x.T, then back
    xt = x.T  # (D, N): each example a column
    ones, zeros = np.ones(xt.shape[1]), np.zeros(xt.shape[1])
    x_hat_t, cache = batchnorm_forward(xt, ones, zeros, {"mode": "train", "eps": _eps(ln_param)})
    return gamma * x_hat_t.T + beta, (cache, gamma, x_hat_t.T)


def ln_transposed_bn_backward(dout, cache):  # correct: batch norm's backward on the transpose
    bn_cache, gamma, x_hat = cache
    dx_t, _, _ = batchnorm_backward_alt((dout * gamma).T, bn_cache)
    return dx_t.T, (dout * x_hat).sum(0), dout.sum(0)


# ---------------------------------------------------------------- 06 fold_batchnorm
def fold_bias_by_variance(w, b, gamma, beta, running_mean, running_var, eps=DEFAULT_EPS):
    s = gamma / np.sqrt(running_var + eps)
    return w * s, (b - running_mean) * gamma / (running_var + eps) + beta


def fold_mean_not_scaled(w, b, gamma, beta, running_mean, running_var, eps=DEFAULT_EPS):
    s = gamma / np.sqrt(running_var + eps)
    return w * s, b * s - running_mean + beta


def fold_gamma_beta_missing(w, b, gamma, beta, running_mean, running_var, eps=DEFAULT_EPS):
    s = 1 / np.sqrt(running_var + eps)
    return w * s, (b - running_mean) * s


def fold_eps_hard_coded(w, b, gamma, beta, running_mean, running_var, eps=DEFAULT_EPS):
    s = gamma / np.sqrt(running_var + 1e-5)
    return w * s, (b - running_mean) * s + beta


def fold_einsum(w, b, gamma, beta, running_mean, running_var, eps=DEFAULT_EPS):  # correct
    s = gamma / np.sqrt(running_var + eps)
    return np.einsum("dm,m->dm", w, s), beta + s * (b - running_mean)


def fold_loop(w, b, gamma, beta, running_mean, running_var, eps=DEFAULT_EPS):  # correct
    w2, b2 = np.array(w, dtype=float), np.array(b, dtype=float)
    for m in range(w.shape[1]):
        s = gamma[m] / np.sqrt(running_var[m] + eps)
        w2[:, m] *= s
        b2[m] = (b[m] - running_mean[m]) * s + beta[m]
    return w2, b2


# ---------------------------------------------------------------- 06 sync_batchnorm_forward
def _sync_cache(shards, gamma, mean, var, bn_param):
    """The cache Exercise 2 specifies, from the global mean and variance."""
    inv_std = 1 / np.sqrt(var + _eps(bn_param))
    return {"x_hat": [(s - mean) * inv_std for s in shards], "inv_std": inv_std,
            "gamma": gamma, "count": sum(len(s) for s in shards)}


def _sync_with_cache(**changes):
    """The reference forward whose cache has entries replaced: changes[key](shards, cache)."""
    def forward(shards, gamma, beta, bn_param):
        eps = _eps(bn_param)
        outs, cache = sync_batchnorm_forward(shards, gamma, beta, bn_param)
        x = np.concatenate(shards)
        ctx = {"shards": shards, "mean": x.mean(0), "var": x.var(0), "eps": eps}
        for key, change in changes.items():
            if change is None:
                cache.pop(key)
            else:
                cache[key] = change(ctx, cache)
        return outs, cache
    return forward


sync_cache_count_devices = _sync_with_cache(count=lambda c, cache: len(c["shards"]))
sync_cache_count_devices.__name__ = "sync_cache_count_devices"
sync_cache_std = _sync_with_cache(inv_std=lambda c, cache: np.sqrt(c["var"] + c["eps"]))
sync_cache_std.__name__ = "sync_cache_std"
sync_cache_x_hat_joined = _sync_with_cache(x_hat=lambda c, cache: np.concatenate(cache["x_hat"]))
sync_cache_x_hat_joined.__name__ = "sync_cache_x_hat_joined"
sync_cache_x_hat_centred = _sync_with_cache(x_hat=lambda c, cache: [s - c["mean"]
                                                                   for s in c["shards"]])
sync_cache_x_hat_centred.__name__ = "sync_cache_x_hat_centred"
sync_cache_no_count = _sync_with_cache(count=None)
sync_cache_no_count.__name__ = "sync_cache_no_count"


def sync_cache_empty(shards, gamma, beta, bn_param):
    outs, _ = sync_batchnorm_forward(shards, gamma, beta, bn_param)
    return outs, {}


def sync_cache_tuple(shards, gamma, beta, bn_param):
    outs, cache = sync_batchnorm_forward(shards, gamma, beta, bn_param)
    return outs, (cache["x_hat"], cache["inv_std"], cache["gamma"], cache["count"])


def sync_concatenated(shards, gamma, beta, bn_param):
    outs, cache = sync_batchnorm_forward(shards, gamma, beta, bn_param)
    return np.concatenate(outs), cache


def sync_even_split(shards, gamma, beta, bn_param):
    outs, cache = sync_batchnorm_forward(shards, gamma, beta, bn_param)
    return np.array_split(np.concatenate(outs), len(shards)), cache


def sync_sums_all_reduce(shards, gamma, beta, bn_param):  # all-reduced Σx, Σx²: cancels
    n = sum(len(s) for s in shards)
    s1, s2 = sum(s.sum(0) for s in shards), sum((s * s).sum(0) for s in shards)
    mean, var = s1 / n, s2 / n - (s1 / n) ** 2
    m, D = bn_param.get("momentum", DEFAULT_MOMENTUM), len(gamma)
    bn_param["running_mean"] = m * bn_param.get("running_mean", np.zeros(D)) + (1 - m) * mean
    bn_param["running_var"] = m * bn_param.get("running_var", np.ones(D)) + (1 - m) * var
    return [gamma * (s - mean) / np.sqrt(var + _eps(bn_param)) + beta for s in shards], \
        _sync_cache(shards, gamma, mean, var, bn_param)


def sync_running_unbiased(shards, gamma, beta, bn_param):
    outs, cache = sync_batchnorm_forward(shards, gamma, beta, bn_param)
    x = np.concatenate(shards)
    n, m = len(x), bn_param.get("momentum", DEFAULT_MOMENTUM)
    bn_param["running_var"] = bn_param["running_var"] + (1 - m) * x.var(0) / (n - 1)
    return outs, cache


def sync_two_pass(shards, gamma, beta, bn_param):  # correct: global mean, then Σ(x − μ)²
    n = sum(len(s) for s in shards)
    mean = sum(s.sum(0) for s in shards) / n
    var = sum(((s - mean) ** 2).sum(0) for s in shards) / n
    m, D = bn_param.get("momentum", DEFAULT_MOMENTUM), len(gamma)
    bn_param["running_mean"] = m * bn_param.get("running_mean", np.zeros(D)) + (1 - m) * mean
    bn_param["running_var"] = m * bn_param.get("running_var", np.ones(D)) + (1 - m) * var
    cache = _sync_cache(shards, gamma, mean, var, bn_param)
    cache["x_hat"] = tuple(cache["x_hat"])  # a tuple where a list is usual
    return tuple(gamma * (s - mean) / np.sqrt(var + _eps(bn_param)) + beta for s in shards), \
        dict(cache, mean=mean)  # an extra key Exercise 3 does not read


def sync_tuple_out(shards, gamma, beta, bn_param):  # correct: a tuple where a list is usual
    outs, cache = sync_batchnorm_forward(shards, gamma, beta, bn_param)
    return tuple(outs), cache


# ---------------------------------------------------------------- 06 sync_batchnorm_backward
def sync_bwd_concatenated(douts, cache):
    dxs, dg, db = sync_batchnorm_backward(douts, cache)
    return np.concatenate(dxs), dg, db


def sync_bwd_var_sign(douts, cache):
    x_hats, inv_std, gamma, n = cache["x_hat"], cache["inv_std"], cache["gamma"], cache["count"]
    db = sum(d.sum(0) for d in douts)
    dg = sum((d * xh).sum(0) for d, xh in zip(douts, x_hats, strict=True))
    return [(gamma * inv_std / n) * (n * d - db + xh * dg) for d, xh in
            zip(douts, x_hats, strict=True)], dg, db


def sync_bwd_dgamma_local(douts, cache):
    dxs, _, db = sync_batchnorm_backward(douts, cache)
    return dxs, (douts[0] * cache["x_hat"][0]).sum(0), db


def sync_bwd_loop(douts, cache):  # correct: explicit all-reduce loops, tuple of dx
    x_hats, inv_std, gamma, n = cache["x_hat"], cache["inv_std"], cache["gamma"], cache["count"]
    db, dg = np.zeros_like(gamma), np.zeros_like(gamma)
    for d, xh in zip(douts, x_hats, strict=True):
        db, dg = db + d.sum(0), dg + (d * xh).sum(0)
    return tuple(gamma * inv_std * (d - db / n - xh * dg / n)
                 for d, xh in zip(douts, x_hats, strict=True)), dg, db


def sync_bwd_recount(douts, cache):  # correct: counts the rows itself
    n = sum(len(d) for d in douts)
    dxs, dg, db = sync_batchnorm_backward(douts, {**cache, "count": n})
    return dxs, dg, db


# ---------------------------------------------------------------- 07 bn_net_loss
def _net(X, params, bn_params, y, reg, *, penalise=lambda k: k.startswith("W"),
         sum_data=False, naive_softmax=False, half=0.5, cache_of=lambda i: i - 1):
    """The network's loss with knobs for one slip each (defaults: correct)."""
    L = len(bn_params)
    mode = "test" if y is None else "train"
    caches, h = [], X
    for i in range(1, L + 1):
        bn_params[i - 1]["mode"] = mode
        z, aff = affine_forward(h, params[f"W{i}"], params[f"b{i}"])
        zn, bn = batchnorm_forward(z, params[f"gamma{i}"], params[f"beta{i}"], bn_params[i - 1])
        h, act = relu_forward(zn)
        caches.append((aff, bn, act))
    scores, last = affine_forward(h, params[f"W{L + 1}"], params[f"b{L + 1}"])
    if y is None:
        return scores
    N = len(y)
    with np.errstate(all="ignore"):
        shifted = scores if naive_softmax else scores - scores.max(1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
        p = np.exp(log_p)
        loss = -log_p[np.arange(N), y].sum()
    dscores = p.copy()
    dscores[np.arange(N), y] -= 1
    if not sum_data:
        loss, dscores = loss / N, dscores / N
    penalised = [k for k in params if penalise(k)]
    loss += half * reg * sum(np.sum(params[k] ** 2) for k in penalised)
    grads = {}
    dh, grads[f"W{L + 1}"], grads[f"b{L + 1}"] = affine_backward(dscores, last)
    for i in range(L, 0, -1):
        aff, bn, act = caches[cache_of(i)]
        dz, grads[f"gamma{i}"], grads[f"beta{i}"] = nb07.batchnorm_backward(
            relu_backward(dh, act), bn)
        dh, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(dz, aff)
    for k in penalised:
        grads[k] = grads[k] + 2 * half * reg * params[k]
    return float(loss), grads


def net_l2_on_biases(X, params, bn_params, y=None, reg=0.0):
    return _net(X, params, bn_params, y, reg,
                penalise=lambda k: k.rstrip("0123456789") in ("W", "b"))


def net_cache_reversed(X, params, bn_params, y=None, reg=0.0):  # caches[-i]: right for L = 1
    return _net(X, params, bn_params, y, reg, cache_of=lambda i: -i)


def net_sum_over_batch(X, params, bn_params, y=None, reg=0.0):
    return _net(X, params, bn_params, y, reg, sum_data=True)


def net_naive_softmax(X, params, bn_params, y=None, reg=0.0):
    return _net(X, params, bn_params, y, reg, naive_softmax=True)


def net_l2_skips_last(X, params, bn_params, y=None, reg=0.0):
    last = f"W{len(bn_params) + 1}"
    return _net(X, params, bn_params, y, reg, penalise=lambda k: k[0] == "W" and k != last)


def net_rewritten(X, params, bn_params, y=None, reg=0.0):  # correct: written out, no helpers
    return _net(X, params, bn_params, y, reg)


def net_logaddexp(X, params, bn_params, y=None, reg=0.0):  # correct: log-sum-exp by numpy
    result = bn_net_loss(X, params, bn_params, y, reg)
    if y is None:
        return result
    _, grads = result
    # the loss again, from the scores, with np.logaddexp.reduce (stable by construction)
    h, L = X, len(bn_params)
    for i in range(1, L + 1):
        h = np.maximum(0, batchnorm_forward(h @ params[f"W{i}"] + params[f"b{i}"],
                                            params[f"gamma{i}"], params[f"beta{i}"],
                                            {"mode": "train", "eps": _eps(bn_params[i - 1])})[0])
    scores = h @ params[f"W{L + 1}"] + params[f"b{L + 1}"]
    data = np.mean(np.logaddexp.reduce(scores, axis=1) - scores[np.arange(len(y)), y])
    penalty = 0.5 * reg * sum(np.sum(params[f"W{i}"] ** 2) for i in range(1, L + 2))
    return data + penalty, grads


# ---------------------------------------------------------------- 07 RMSNorm
def rms_sum_not_mean(x, gamma, rms_param):
    rms = np.sqrt((x**2).sum(axis=1, keepdims=True) + _eps(rms_param))
    return gamma * x / rms, {"x_hat": x / rms, "rms": rms, "gamma": gamma}


def rms_proj_summed(dout, cache):
    x_hat, rms, g = cache["x_hat"], cache["rms"], dout * cache["gamma"]
    return (g - x_hat * (g * x_hat).sum(axis=1, keepdims=True)) / rms, (dout * x_hat).sum(0)


def rms_no_eps(x, gamma, rms_param):
    rms = np.sqrt(np.mean(x**2, axis=1, keepdims=True))
    return gamma * x / rms, {"x_hat": x / rms, "rms": rms, "gamma": gamma}


def rms_dgamma_with_x(dout, cache):
    dx, _ = rmsnorm_backward(dout, cache)
    return dx, (dout * cache["x_hat"] * cache["rms"]).sum(0)


def rms_einsum_forward(x, gamma, rms_param):  # correct, another cache
    D = x.shape[1]
    inv = 1 / np.sqrt(np.einsum("nd,nd->n", x, x) / D + _eps(rms_param))  # (N,)
    return np.einsum("nd,n,d->nd", x, inv, gamma), (x, inv, gamma)


def rms_einsum_backward(dout, cache):  # correct, the pair of the one above
    x, inv, gamma = cache
    D = x.shape[1]
    x_hat = x * inv[:, None]
    g = dout * gamma
    proj = np.einsum("nd,nd->n", g, x_hat) / D
    return (g - x_hat * proj[:, None]) * inv[:, None], np.einsum("nd,nd->d", dout, x_hat)


def rms_loop_forward(x, gamma, rms_param):  # correct: one example at a time, a list cache
    rms = [np.sqrt(np.mean(row**2) + _eps(rms_param)) for row in x]
    x_hat = np.array([row / r for row, r in zip(x, rms, strict=True)])
    return gamma * x_hat, [x_hat, gamma, rms]


def rms_dx_hat_without_gamma(dout, cache):  # g = dout where dout·γ belongs
    x_hat, rms = cache["x_hat"], cache["rms"]
    return (dout - x_hat * np.mean(dout * x_hat, axis=1, keepdims=True)) / rms, \
        (dout * x_hat).sum(0)


def rms_loop_backward(dout, cache):  # correct: the pair of the one above
    x_hat, gamma, rms = cache
    dx = np.empty_like(dout)
    for i, r in enumerate(rms):
        g = dout[i] * gamma
        dx[i] = (g - x_hat[i] * np.mean(g * x_hat[i])) / r
    return dx, (dout * x_hat).sum(0)


# ---------------------------------------------------------------- 07 Batch Renorm
def _brn(x, gamma, beta, bn_param, *, clip_d=True, r_sigma_eps=True, d_over_batch=False,
         std_running=False, update_first=False):
    """Batch Renorm's forward with knobs for one slip each (defaults: correct)."""
    if bn_param.get("mode", "train") == "test":
        return batchnorm_forward(x, gamma, beta, bn_param)
    eps, m = _eps(bn_param), bn_param.get("momentum", DEFAULT_MOMENTUM)
    r_max, d_max = bn_param.get("r_max", R_MAX), bn_param.get("d_max", D_MAX)
    mu, var = x.mean(0), x.var(0)

    def update():
        fed = np.sqrt(var) if std_running else var
        bn_param["running_mean"] = m * bn_param["running_mean"] + (1 - m) * mu
        bn_param["running_var"] = m * bn_param["running_var"] + (1 - m) * fed

    if update_first:
        update()
    rm, rv = bn_param["running_mean"], bn_param["running_var"]
    sb = np.sqrt(var + eps)
    r = np.clip(sb / (np.sqrt(rv + eps) if r_sigma_eps else np.sqrt(rv)), 1 / r_max, r_max)
    d = (mu - rm) / (sb if d_over_batch else np.sqrt(rv + eps))
    if clip_d:
        d = np.clip(d, -d_max, d_max)
    if not update_first:
        update()
    return gamma * ((x - mu) / sb * r + d) + beta, {}


def brn_d_unclipped(x, gamma, beta, bn_param):
    return _brn(x, gamma, beta, bn_param, clip_d=False)


def brn_r_without_eps(x, gamma, beta, bn_param):
    return _brn(x, gamma, beta, bn_param, r_sigma_eps=False)


def brn_d_over_batch_sigma(x, gamma, beta, bn_param):
    return _brn(x, gamma, beta, bn_param, d_over_batch=True)


def brn_running_std(x, gamma, beta, bn_param):
    return _brn(x, gamma, beta, bn_param, std_running=True)


def brn_update_first(x, gamma, beta, bn_param):
    return _brn(x, gamma, beta, bn_param, update_first=True)


def brn_eps_hard_coded(x, gamma, beta, bn_param):  # eps = 1e-5 whatever bn_param states
    stated = bn_param.get("eps")
    bn_param["eps"] = DEFAULT_EPS
    out = _brn(x, gamma, beta, bn_param)
    if stated is None:
        bn_param.pop("eps")
    else:
        bn_param["eps"] = stated
    return out


def brn_rewritten(x, gamma, beta, bn_param):  # correct: written out with np.minimum/maximum
    return _brn(x, gamma, beta, bn_param)


def brn_loop(x, gamma, beta, bn_param):  # correct: one feature at a time
    if bn_param.get("mode", "train") == "test":
        return batchnorm_forward(x, gamma, beta, bn_param)
    eps, m = _eps(bn_param), bn_param.get("momentum", DEFAULT_MOMENTUM)
    r_max, d_max = bn_param.get("r_max", R_MAX), bn_param.get("d_max", D_MAX)
    out = np.empty_like(x)
    rm, rv = bn_param["running_mean"].copy(), bn_param["running_var"].copy()
    for j in range(x.shape[1]):
        col = x[:, j]
        sb, sr = np.sqrt(col.var() + eps), np.sqrt(rv[j] + eps)
        r = min(max(sb / sr, 1 / r_max), r_max)
        d = min(max((col.mean() - rm[j]) / sr, -d_max), d_max)
        out[:, j] = gamma[j] * ((col - col.mean()) / sb * r + d) + beta[j]
        rm[j], rv[j] = m * rm[j] + (1 - m) * col.mean(), m * rv[j] + (1 - m) * col.var()
    bn_param["running_mean"], bn_param["running_var"] = rm, rv
    return out, None


# ---------------------------------------------------------------- the tables
NB = {"01": "01_why_normalize", "02": "02_forward_pass", "03": "03_backward_pass",
      "04": "04_running_stats", "05": "05_cnn_and_layernorm", "06": "06_in_practice",
      "07": "07_why_bn_helps"}

# ------------------------------------------ what comes back is not one NumPy array
def std_as_list(x, eps=DEFAULT_EPS):
    # right numbers, but a Python list: every later cell that uses it as an array breaks
    return ((x - x.mean(0)) / np.sqrt(x.var(0) + eps)).tolist()


def fwd_out_as_list(x, gamma, beta, bn_param):
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    return out.tolist(), cache


def closed_dx_as_rows(dout, cache):
    dx, dgamma, dbeta = batchnorm_backward_alt(dout, cache)
    return list(dx), dgamma, dbeta


def sync_bwd_partial_sums(douts, cache):
    # dγ and dβ left as one partial sum per device: the all-reduce is missing
    dxs, _, _ = sync_batchnorm_backward(douts, cache)
    return (dxs, [(d * xh).sum(0) for d, xh in zip(douts, cache["x_hat"], strict=True)],
            [d.sum(0) for d in douts])


LIST_NOT_ARRAY = "not a NumPy array: return an array"


# ------------------------------------------ a forward that updates a copy of the caller's dict
def spatial_param_copied(x, gamma, beta, bn_param):
    # the running statistics land in a copy: the caller's bn_param never gets them
    return norms.spatial_batchnorm_forward(x, gamma, beta, dict(bn_param))


COPIED = "train mode must write the running statistics back into that dict"


# (notebook, task, the student's function, the words every failing case's message must hold,
#  or LOCATED: no cause may be named)
WRONG = [
    ("01", "saturation_fraction", sat_at_or_above, "exactly at ±threshold"),
    ("01", "saturation_fraction", sat_lower_tail, "only z < −threshold"),
    ("01", "saturation_fraction", sat_per_row, "number of rows"),
    # a 0/1 answer below ½ equals round(fraction): a comparison is as plausible as rounding
    ("01", "saturation_fraction", sat_mean_compared, Not("rounded")),
    ("01", "standardize", std_eps_ignored, "ε was 1e-05, the default, although the case "
                                           "states 0.001: use the eps argument"),
    ("01", "standardize", std_eps_tiny_default, "the output matches ε = 1e-08"),
    ("01", "standardize", std_eps_hard_coded, "the output matches ε = 0.0001"),
    ("01", "standardize", std_eps_squared, "the output matches ε = ε²"),
    ("01", "standardize", std_spread_whole, "spread was taken over the whole array"),
    ("01", "standardize", std_not_centred, "the mean was not subtracted"),
    ("01", "standardize", std_rounded, "rounded to 3 decimals"),
    ("01", "standardize", std_one_pass, "E[x²] − E[x]²"),
    ("01", "standardize", std_as_list, LIST_NOT_ARRAY),
    ("02", "batchnorm_forward", fwd_beta_inside, "β was added before scaling"),
    ("02", "batchnorm_forward", fwd_float32_out, "is float32"),
    ("02", "batchnorm_forward", fwd_mean_per_example, "the mean was taken per example"),
    ("02", "batchnorm_forward", fwd_one_pass, "E[x²] − E[x]²"),
    ("02", "batchnorm_forward", fwd_out_as_list, LIST_NOT_ARRAY),
    ("02", "batchnorm_forward", fwd_complex, "complex numbers"),
    # the axis is right: no reminder of where the statistics belong
    ("02", "batchnorm_forward", fwd_var_over_n_plus_1, Not("statistics belong")),
    ("03", "batchnorm_backward", staged_dvar_without_var, "σ² per feature"),
    ("03", "batchnorm_backward", staged_dsq_not_shared, "dsq = dvar / N"),
    ("03", "batchnorm_backward", staged_dgamma_with_x, "it sums dout·x"),
    # ε shows in every feature of a case without a tiny one, and the error there is spread
    ("03", "batchnorm_backward", staged_no_eps, LOCATED),
    ("03", "batchnorm_backward_alt", closed_mean_term_times_N, "−Σdout term (the path through "
                                                               "the mean) is N"),
    ("03", "batchnorm_backward_alt", closed_prefactor_var, "divides by σ once, not twice"),
    ("03", "batchnorm_backward_alt", closed_dx_as_rows, "`dx` came back as a list of"),
    ("03", "batchnorm_backward_alt", closed_var_term_with_x, LOCATED),
    # test mode reads the running buffers (only rescaled): no reminder that it should
    ("04", "batchnorm_forward", modes_test_rescaled_running_var, Not("test mode uses")),
    ("04", "batchnorm_forward", modes_test_batch_var, "divided by the batch's own spread"),
    ("04", "batchnorm_forward", modes_var_not_written, "still holds its old value"),
    ("04", "batchnorm_forward", modes_running_std, "standard deviation was averaged"),
    ("04", "batchnorm_forward", modes_var_momentum_reversed, "momentum convention is reversed"),
    ("04", "batchnorm_forward", modes_fresh_keyerror, "fresh layer"),
    ("04", "pytorch_running_update", torch_float32, "is float32"),
    ("04", "pytorch_running_update", torch_replaced, "replaced by the batch statistic"),
    ("04", "pytorch_running_update", torch_one_pass, "E[x²] − E[x]²"),
    # the next update would compute momentum * list: a list is not an accepted answer
    ("04", "pytorch_running_update", torch_tuple_of_lists, LIST_NOT_ARRAY),
    ("04", "pytorch_running_update", torch_std, "standard deviation was averaged"),
    ("04", "pytorch_running_update", torch_mean_per_example, "reduced over the wrong axis"),
    ("05", "spatial_batchnorm_forward", spatial_dx_layout, "wrong axis order"),
    # the checker reads the buffers back: their absence is the student's slip, not a KeyError
    ("05", "spatial_batchnorm_forward", (spatial_param_copied, norms.spatial_batchnorm_backward),
     COPIED),
    ("05", "spatial_batchnorm_forward", spatial_running_unbiased, "divides by N − 1"),
    ("05", "spatial_batchnorm_forward", spatial_divided_by_gamma, "divided by γ"),
    ("05", "spatial_batchnorm_forward", spatial_test_no_eps, "ε is missing in test mode"),
    # the forward reshapes without the transpose (its backward, right, reads that cache)
    ("05", "spatial_batchnorm_forward", (spatial_nt_forward, spatial_einsum_backward),
     "x.reshape(-1, C) without moving the channels last first"),
    ("05", "spatial_batchnorm_forward", spatial_nt_backward_only,
     "dout.reshape(-1, C) without moving the channels last first"),
    ("05", "layernorm_forward", ln_dx_hat_without_gamma, "γ is missing from dx"),
    ("05", "layernorm_forward", ln_spread_over_batch, "spread was taken over the batch"),
    ("05", "layernorm_forward", ln_dgamma_per_example, "one value per example"),
    ("05", "layernorm_forward", ln_var_term_summed, "D = "),
    ("06", "fold_batchnorm", fold_bias_by_variance, "1/σ"),
    ("06", "fold_batchnorm", fold_mean_not_scaled, "subtracted after scaling"),
    ("06", "fold_batchnorm", fold_gamma_beta_missing, "γ is missing"),
    ("06", "fold_batchnorm", fold_eps_hard_coded, "ε was 1e-05, the default, although the "
                                                  "case passes eps = 0.001"),
    ("06", "sync_batchnorm_forward", sync_concatenated, "one array of shape"),
    ("06", "sync_batchnorm_forward", sync_even_split, "split at the wrong places"),
    ("06", "sync_batchnorm_forward", sync_sums_all_reduce, "E[x²] − E[x]²"),
    ("06", "sync_batchnorm_forward", sync_running_unbiased, "divides by N − 1"),
    ("06", "sync_batchnorm_forward", sync_cache_count_devices, "number of devices K"),
    ("06", "sync_batchnorm_forward", sync_cache_std, "store the inverse"),
    ("06", "sync_batchnorm_forward", sync_cache_x_hat_joined,
     "`cache['x_hat']` is one array of shape"),
    ("06", "sync_batchnorm_forward", sync_cache_x_hat_centred,
     "`cache['x_hat']`: x − μ was never divided"),
    ("06", "sync_batchnorm_forward", sync_cache_no_count, "cache has no key 'count'"),
    ("06", "sync_batchnorm_forward", sync_cache_empty, "cache has no key 'x_hat'"),
    ("06", "sync_batchnorm_forward", sync_cache_tuple, "the cache is a tuple"),
    ("06", "sync_batchnorm_backward", sync_bwd_concatenated, "one array of shape"),
    ("06", "sync_batchnorm_backward", sync_bwd_var_sign, "x̂·Σ(dout·x̂) term"),
    ("06", "sync_batchnorm_backward", sync_bwd_dgamma_local, "one device's rows only"),
    ("06", "sync_batchnorm_backward", sync_bwd_partial_sums,
     "`dgamma` came back as a list of"),
    ("07", "bn_net_loss", net_l2_on_biases, "covers the weight matrices W only"),
    ("07", "bn_net_loss", net_sum_over_batch, "summed over the N examples"),
    ("07", "bn_net_loss", net_naive_softmax, "np.exp overflows"),
    ("07", "bn_net_loss", net_l2_skips_last, "leaves out W"),
    ("07", "bn_net_loss", net_cache_reversed, "print the shapes where they meet"),
    ("07", "rmsnorm_forward", rms_sum_not_mean, "sum of squares"),
    ("07", "rmsnorm_forward", rms_proj_summed, "D = "),
    ("07", "rmsnorm_forward", rms_no_eps, "ε is missing"),
    ("07", "rmsnorm_forward", rms_dgamma_with_x, "it sums dout·x"),
    ("07", "rmsnorm_forward", rms_dx_hat_without_gamma, "γ is missing from dx"),
    ("07", "batch_renorm_forward", brn_d_unclipped, "d was not clipped"),
    # ε beside running variances near 1 moves r by 5e-6: out is off, the cause is not readable
    ("07", "batch_renorm_forward", brn_r_without_eps, LOCATED),
    ("07", "batch_renorm_forward", brn_d_over_batch_sigma, "divided by the batch's σ_B"),
    ("07", "batch_renorm_forward", brn_running_std, "standard deviation was averaged"),
    ("07", "batch_renorm_forward", brn_update_first, "after this batch's update"),
    # ε hard-coded where the case states 1e-3: named as such, never as "lacks ε"
    ("07", "batch_renorm_forward", brn_eps_hard_coded, "ε was 1e-05, the default, although "
                                                       "the case states 0.001"),
]

RIGHT = [
    ("01", "saturation_fraction", sat_squares), ("01", "saturation_fraction", sat_loop),
    ("01", "standardize", std_einsum), ("01", "standardize", std_loop),
    ("02", "batchnorm_forward", fwd_einsum), ("02", "batchnorm_forward", fwd_loop),
    ("03", "batchnorm_backward", staged_einsum), ("03", "batchnorm_backward", staged_from_x),
    ("03", "batchnorm_backward_alt", closed_loop), ("03", "batchnorm_backward_alt", closed_means),
    ("04", "batchnorm_forward", modes_setdefault), ("04", "batchnorm_forward", modes_tuple_cache),
    ("04", "pytorch_running_update", torch_loop),
    ("04", "pytorch_running_update", torch_einsum),
    ("05", "spatial_batchnorm_forward", (spatial_moveaxis, spatial_moveaxis_backward)),
    ("05", "spatial_batchnorm_forward", spatial_einsum_backward),
    ("05", "layernorm_forward", (ln_loop_forward, ln_loop_backward)),
    ("05", "layernorm_forward", (ln_transposed_bn, ln_transposed_bn_backward)),
    ("06", "fold_batchnorm", fold_einsum), ("06", "fold_batchnorm", fold_loop),
    ("06", "sync_batchnorm_forward", sync_two_pass),
    ("06", "sync_batchnorm_forward", sync_tuple_out),
    ("06", "sync_batchnorm_backward", sync_bwd_loop),
    ("06", "sync_batchnorm_backward", sync_bwd_recount),
    ("07", "bn_net_loss", net_rewritten), ("07", "bn_net_loss", net_logaddexp),
    ("07", "rmsnorm_forward", (rms_einsum_forward, rms_einsum_backward)),
    ("07", "rmsnorm_forward", (rms_loop_forward, rms_loop_backward)),
    ("07", "batch_renorm_forward", brn_rewritten), ("07", "batch_renorm_forward", brn_loop),
]


def slotted(task, fns):
    """The task's reference functions with the student's in the slots whose parameters match."""
    fns = fns if isinstance(fns, tuple) else (fns,)
    if len(task.reference) == len(fns):
        return fns
    out = list(task.reference)
    for fn in fns:
        params = list(inspect.signature(fn).parameters)
        slots = [i for i, ref in enumerate(task.reference)
                 if list(inspect.signature(ref).parameters) == params]
        assert len(slots) == 1, (fn.__name__, slots)
        out[slots[0]] = fn
    return tuple(out)


def _name(fns):
    return "+".join(f.__name__ for f in (fns if isinstance(fns, tuple) else (fns,)))


@pytest.mark.parametrize("nb, gid, fn, words", WRONG,
                         ids=[f"{nb}:{_name(fn)}" for nb, _, fn, _ in WRONG])
def test_unlisted_wrong_answer_gets_its_hint_or_no_cause(nb, gid, fn, words, capsys):
    task = get(gid, NB[nb])
    impl = slotted(task, fn)
    for seed in SEEDS:
        verdicts = _verdicts(task, impl, seed)
        failing = [v for v in verdicts if not v.passed]
        assert failing, f"seed {seed}: a wrong answer passes every case"
        for v in failing:
            assert v.mistake not in {m.name for m in task.mistakes}, \
                f"{v.mistake} is catalogued: pick an unlisted slip"
            if words is LOCATED:
                assert v.cause is None, f"seed {seed}: names {v.cause}: {v.message}"
            elif isinstance(words, Not):
                assert words not in v.message, f"seed {seed}: {words!r} in {v.message}"
            else:
                assert words in v.message, f"seed {seed}: {words!r} not in {v.message}"
    assert not check(gid, *impl, notebook=NB[nb])
    out = capsys.readouterr().out
    assert words is LOCATED or isinstance(words, Not) or words in out


@pytest.mark.parametrize("nb, gid, fn", RIGHT, ids=[f"{nb}:{_name(fn)}" for nb, _, fn in RIGHT])
def test_correct_answer_written_unusually_passes(nb, gid, fn):
    task = get(gid, NB[nb])
    impl = slotted(task, fn)
    for seed in SEEDS:
        verdicts = _verdicts(task, impl, seed)
        assert all(v.passed for v in verdicts), [v.message for v in verdicts if not v.passed]


def test_every_task_has_three_new_wrong_answers_and_two_unusual_right_ones():
    wrong, right = {}, {}
    for nb, gid, *_ in WRONG:
        wrong[NB[nb], gid] = wrong.get((NB[nb], gid), 0) + 1
    for nb, gid, _ in RIGHT:
        right[NB[nb], gid] = right.get((NB[nb], gid), 0) + 1
    assert set(wrong) == set(right) == set(all_tasks())
    assert min(wrong.values()) >= 3 and min(right.values()) >= 2


# ---------------------------------------------------------------- never a cause that is not there
# Every planted mistake, judged with its own catalogue entry removed (so the detectors speak),
# may only be named by these causes (ids of diagnose.Cause components); any other cause named is
# a misleading hint. A planted mistake missing here must get no cause at all.
PLANTED_CAUSES = {
    ("01", "saturation_fraction", "per_feature"): {"shape:"},
    ("01", "saturation_fraction", "fixed_threshold"): {"holds:fraction_at_default_threshold_4"},
    ("01", "standardize", "ddof1"): {"ddof1"},
    ("01", "standardize", "per_example"): {"axes:across"},
    ("01", "standardize", "whole_batch"): {"axes:whole"},
    ("01", "standardize", "std_plus_eps"): {"eps_outside"},
    ("01", "standardize", "sqrt_eps_apart"): {"sqrt_eps"},
    ("01", "standardize", "no_eps"): {"eps_missing"},
    ("02", "batchnorm_forward", "ddof1"): {"ddof1"},
    ("02", "batchnorm_forward", "eps_outside"): {"eps_outside"},
    ("02", "batchnorm_forward", "eps_missing"): {"eps_missing"},
    ("02", "batchnorm_forward", "wrong_axis"): {"axes:across"},
    ("02", "batchnorm_forward", "whole_array"): {"axes:whole"},
    ("02", "batchnorm_forward", "ddof1_eps_outside"): {"ddof1", "eps_outside"},
    ("02", "batchnorm_forward", "minus_beta"): {"offset:-2β"},
    ("02", "batchnorm_forward", "gamma_beta_swapped"): {"affine:swapped"},
    ("02", "batchnorm_forward", "divided_by_gamma"): {"affine:divided"},
    ("02", "batchnorm_forward", "float32"): {"float32"},
    ("02", "batchnorm_forward", "running_in_train"): {"train:running"},
    ("03", "batchnorm_backward", "no_mu_path"): {"terms:mean×0"},
    ("03", "batchnorm_backward", "no_var_path"): {"terms:var×0"},
    ("03", "batchnorm_backward", "swapped"): {"holds:dbeta", "holds:dgamma"},
    ("03", "batchnorm_backward", "wrong_axis"): {"shape:"},
    ("03", "batchnorm_backward", "wrong_axis_all"): {"shape:"},
    ("03", "batchnorm_backward", "no_half_in_dvar"): {"terms:var×2"},
    ("03", "batchnorm_backward", "no_two_in_dxmu"): {"terms:var×½"},
    ("03", "batchnorm_backward", "dsq_n_minus_1"): {"terms:var×N/(N − 1)"},
    ("03", "batchnorm_backward", "no_gamma_in_dx_hat"): {"scale:1/γ"},
    ("03", "batchnorm_backward", "dmu_sign"): {"terms:mean×−1"},
    ("04", "batchnorm_forward", "momentum_reversed"): {"running:reversed:right"},
    ("04", "batchnorm_forward", "not_written_back"): {"running:not_updated"},
    ("04", "batchnorm_forward", "unbiased_running_var"): {"running:right:unbiased"},
    ("04", "batchnorm_forward", "batch_stats_in_test"): {"running:batch_stats"},
    ("04", "batchnorm_forward", "eps_missing_in_test"): {"running:no_eps"},
    ("04", "batchnorm_forward", "beta_missing_in_test"): {"offset:-1β"},
    ("04", "batchnorm_forward", "running_in_train"): {"train:running"},
    ("04", "pytorch_running_update", "course_convention_and_biased"):
        {"running:reversed:biased", "running:reversed:right"},  # running_mean: reversed only
    ("04", "pytorch_running_update", "course_convention"): {"running:reversed:right"},
    ("04", "pytorch_running_update", "biased_var"): {"running:right:biased"},
    ("05", "layernorm_forward", "batch_axis"): {"axes:across"},
    ("05", "layernorm_forward", "ddof1"): {"ddof1"},
    ("05", "layernorm_forward", "eps_outside"): {"eps_outside"},
    ("05", "layernorm_forward", "stats_constant"): {"terms:mean×0,var×0"},
    # the layout slip as an output form (the planted answer reshapes in both passes)
    ("05", "spatial_batchnorm_forward", "no_transpose"): {"alt:forward"},
    ("05", "spatial_batchnorm_forward", "backward_no_transpose"): {"alt:backward"},
    ("06", "fold_batchnorm", "variance_not_std"): {"scale:1/σ", "scale-β:1/σ"},
    ("06", "sync_batchnorm_forward", "unbiased_variance"): {"running:right:unbiased", "ddof1"},
    ("06", "sync_batchnorm_forward", "running_not_updated"): {"running:not_updated"},
    ("06", "sync_batchnorm_backward", "stats_as_constants"): {"terms:mean×0,var×0"},
    ("07", "bn_net_loss", "reg_grad_missing"): {"reg:missing"},
    ("07", "bn_net_loss", "reg_grad_doubled"): {"reg:doubled"},
    ("07", "bn_net_loss", "reg_loss_missing"): {"reg:missing"},
    ("07", "bn_net_loss", "reg_on_gamma"): {"reg:extra:gamma"},
    # the gradient that went around BN leaves db_i equal to what dbeta_i should be: a fact
    ("07", "bn_net_loss", "bn_backward_skipped"): {"holds:dbeta"},
    ("07", "rmsnorm_forward", "mean_subtracted"): {"centred", "variance"},
    ("07", "rmsnorm_forward", "eps_outside"): {"eps_outside"},
    ("07", "rmsnorm_forward", "batch_axis"): {"spread:across"},
    ("07", "rmsnorm_forward", "no_root"): {"by_var"},
    ("07", "rmsnorm_forward", "rms_constant"): {"terms:proj×0"},
    ("07", "batch_renorm_forward", "not_clipped"): {"renorm:r=unclipped:d=unclipped"},
    ("07", "batch_renorm_forward", "r_inverted"): {"renorm:r=inverted:d=right"},
    ("07", "batch_renorm_forward", "d_sign"): {"renorm:r=right:d=sign"},
    ("07", "batch_renorm_forward", "d_not_scaled"): {"renorm:r=right:d=not_scaled"},
    ("07", "batch_renorm_forward", "running_not_updated"): {"running:not_updated"},
    ("07", "batch_renorm_forward", "ddof1"): {"renorm:r=ddof1:d=right", "running:right:unbiased"},
}
# notebook 03's two tasks share their catalogue
PLANTED_CAUSES |= {("03", "batchnorm_backward_alt", m): c for (nb, g, m), c in
                   PLANTED_CAUSES.items() if g == "batchnorm_backward"}


def _allowed(cause, allowed):
    return any(cause == a or (a.endswith((":", "holds:dbeta")) and cause.startswith(a))
               for a in allowed)


PLANTED = [(nb, t.grade_id, m) for nb, full in NB.items() for t in all_tasks().values()
           if t.notebook == full for m in t.mistakes]


@pytest.mark.parametrize("nb, gid, mistake", PLANTED,
                         ids=[f"{nb}:{gid}-{m.name}" for nb, gid, m in PLANTED])
def test_no_message_names_a_cause_its_case_does_not_have(nb, gid, mistake):
    task = get(gid, NB[nb])
    bare = dataclasses.replace(task, mistakes=tuple(m for m in task.mistakes if m is not mistake))
    allowed = PLANTED_CAUSES.get((nb, gid, mistake.name), set())
    for seed in SEEDS:
        for v in _verdicts(bare, mistake.impl, seed):
            if v.passed or v.cause is None:
                continue
            for cause in v.cause.split("; "):
                assert _allowed(cause, allowed), f"seed {seed}: {cause} named: {v.message}"


ALL_WRONG = [(nb, gid, fn) for nb, gid, fn, _ in WRONG] + [
    (nb[:2], gid, fns) for nb, gid, fns, _ in OLDER_UNLISTED]


@pytest.mark.parametrize("nb, gid, fn", ALL_WRONG, ids=[f"{nb}:{_name(f)}" for nb, _, f in
                                                       ALL_WRONG])
def test_every_output_a_message_calls_wrong_is_wrong_and_right_is_right(nb, gid, fn):
    # The summary names outputs right and wrong; each must be so (within the task's tolerance).
    task = get(gid, NB[nb])
    impl = slotted(task, fn)
    from course.tasks.base import _one_close, _regroup
    for case in task.cases(0):
        result = run_case(task, impl, case)
        if result.error:
            continue
        v = evaluate_all(task, [case], [result])[0]
        if v.passed or " right, " not in v.message:
            continue
        expected = run_case(task, task.reference, case)
        got, want, _ = _regroup(task, result.outputs, expected.outputs)
        head = v.message.split(" right, ")[0]
        for k in want:
            if f"`{k}`" in head:
                assert _one_close(task, got[k], want[k]), (k, v.message)


# ---------------------------------------------------------------- switch-free variants
def _same_everywhere(task, impl, seeds=(0, 3)):
    for seed in seeds:
        for case in task.cases(seed):
            assert evaluate_all(task, [case], [run_case(task, impl, case)])[0].passed, case.label


def test_switch_free_variants_equal_their_reference():
    # Each planted mistake built from a variant with switches: with every switch off, the
    # variant is the reference (so each planted slip is the one switch it sets).
    _same_everywhere(get("batchnorm_backward"), (nb03._staged,))
    _same_everywhere(get("batchnorm_backward_alt"), (nb03._staged,))
    _same_everywhere(get("layernorm_forward"), nb05._ln_variant())
    _same_everywhere(get("bn_net_loss"), nb07._net_variant())
    _same_everywhere(get("rmsnorm_forward"), nb07._rms_variant())
    _same_everywhere(get("batch_renorm_forward"), nb07._brn_variant())


def _pairs(message):
    """Every 'A instead of B' a message prints, as (A, B) text."""
    out = []
    for left, right in zip(message.split(" instead of ")[:-1], message.split(" instead of ")[1:],
                           strict=True):
        a = left.rsplit(" is ", 1)[-1].strip()
        b = right.split(" (")[0].split("; ")[0].split(": ")[0].strip()
        out.append((a, b))
    return out


@pytest.mark.parametrize("nb, gid, fn", ALL_WRONG + [(nb, gid, m.impl) for nb, gid, m in PLANTED],
                         ids=[f"{nb}:{_name(f)}" for nb, _, f in ALL_WRONG]
                         + [f"{nb}:{gid}-{m.name}" for nb, gid, m in PLANTED])
def test_a_property_said_to_be_off_prints_differently_from_its_expected_value(nb, gid, fn):
    # "std [1, 1, 0.239] instead of [1, 1, 0.239]" would claim a property is off while showing
    # it right: every printed pair differs, and a property named is one that is off.
    task = get(gid, NB[nb])
    bare = dataclasses.replace(task, mistakes=())  # the detectors speak for planted ones too
    for v in _verdicts(bare, slotted(task, fn), 0):
        for a, b in _pairs(v.message):
            assert a != b, v.message


def test_pairs_reads_what_a_message_prints():
    msg = ("(out − β)/γ of `out`: its std per feature is [1.025, 1] instead of [0.9995, 1] "
           "(statistics …); `loss` is 2.27 instead of 2.39")
    assert _pairs(msg) == [("[1.025, 1]", "[0.9995, 1]"), ("2.27", "2.39")]
