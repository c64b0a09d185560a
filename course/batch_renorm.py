"""Batch Renormalization (Ioffe, 2017): normalise with the batch statistics, then correct them
towards the running ones by r and d, clipped, and held constant in the backward pass."""

import numpy as np

from course.batchnorm import batchnorm_backward_alt, batchnorm_forward, ema_update, read_bn_param

R_MAX, D_MAX = 3.0, 5.0  # the paper's final clipping limits; (1, 0) makes it plain BN


def batch_renorm_forward(x, gamma, beta, bn_param):
    """Train mode: gamma * ((x - mu_B) / sigma_B * r + d) + beta with r = clip(sigma_B / sigma,
    1/r_max, r_max) and d = clip((mu_B - mu) / sigma, -d_max, d_max), sigma from the running
    statistics. Test mode: exactly BN's test mode."""
    p = read_bn_param(bn_param, x.shape[1], x.dtype)
    if p.mode == "test":
        return batchnorm_forward(x, gamma, beta, bn_param)
    r_max, d_max = bn_param.get("r_max", R_MAX), bn_param.get("d_max", D_MAX)
    mu, var = x.mean(axis=0), x.var(axis=0)  # (D,), (D,) biased, as in BN
    std_b = np.sqrt(var + p.eps)  # (D,) batch sigma
    std_r = np.sqrt(p.running_var + p.eps)  # (D,) running sigma
    r = np.clip(std_b / std_r, 1 / r_max, r_max)  # (D,)
    d = np.clip((mu - p.running_mean) / std_r, -d_max, d_max)  # (D,)
    x_bn = (x - mu) / std_b  # (N, D) what plain BN would use
    x_hat = x_bn * r + d  # (N, D) corrected towards the running statistics
    if not p.frozen:
        bn_param["running_mean"] = ema_update(p.running_mean, mu, p.momentum)  # (D,)
        bn_param["running_var"] = ema_update(p.running_var, var, p.momentum)  # (D,)
    cache = {"x_bn": x_bn, "x_hat": x_hat, "inv_std": 1.0 / std_b, "gamma": gamma, "r": r,
             "d": d, "mu": mu, "var": var}
    return gamma * x_hat + beta, cache  # (N, D)


def batch_renorm_backward(dout, cache):
    """Gradients (dx, dgamma, dbeta) with r and d treated as constants (the paper's rule)."""
    if cache.get("mode") == "test":
        return batchnorm_backward_alt(dout, cache)
    # x_hat = r * x_bn + d: BN's backward for x_bn with gamma * r as the scale.
    bn_cache = {"x_hat": cache["x_bn"], "inv_std": cache["inv_std"],
                "gamma": cache["gamma"] * cache["r"]}
    dx, _, dbeta = batchnorm_backward_alt(dout, bn_cache)  # (N, D), _, (D,)
    return dx, (dout * cache["x_hat"]).sum(axis=0), dbeta  # dgamma (D,)


def with_reference_backward(forward):
    """A Batch Renorm forward (say, a student's) paired with the reference cache, so that the
    reference backward can train a network with it: the output and the running statistics are
    forward's own; the cache comes from the reference run on the same input and buffers."""
    def forward_fn(x, gamma, beta, bn_param):
        before = {k: np.copy(v) if isinstance(v, np.ndarray) else v  # the buffers as forward
                  for k, v in bn_param.items()}  # found them, even if it updates them in place
        out, _ = forward(x, gamma, beta, bn_param)
        if before.get("frozen"):  # predicting with batch statistics: the buffers must not move,
            bn_param.update(running_mean=before["running_mean"],  # even if forward (written to
                            running_var=before["running_var"])  # the exercise) ignores "frozen"
        _, cache = batch_renorm_forward(x, gamma, beta, before)
        return out, cache
    return forward_fn
