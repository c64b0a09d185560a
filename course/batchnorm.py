"""Reference batch normalization for (N, D) inputs, cs231n-style API."""

from typing import NamedTuple

import numpy as np

DEFAULT_EPS = 1e-5
DEFAULT_MOMENTUM = 0.9  # weight of the OLD running value: running = m * running + (1 - m) * batch


class BNParam(NamedTuple):
    """The settings and buffers a bn_param dict holds, with the course's defaults filled in."""

    mode: str
    eps: float
    momentum: float
    running_mean: np.ndarray  # (D,)
    running_var: np.ndarray  # (D,)
    frozen: bool  # train-mode arithmetic without updating the buffers (predicting with batch stats)


def read_bn_param(bn_param, D, dtype=float):
    """Read a cs231n-style bn_param: missing buffers start at mean 0 and variance 1."""
    mode = bn_param.get("mode", "train")
    if mode not in ("train", "test"):
        raise ValueError(f"bn_param['mode'] must be 'train' or 'test', got {mode!r}")
    return BNParam(mode, bn_param.get("eps", DEFAULT_EPS),
                   bn_param.get("momentum", DEFAULT_MOMENTUM),
                   bn_param.get("running_mean", np.zeros(D, dtype=dtype)),  # (D,)
                   bn_param.get("running_var", np.ones(D, dtype=dtype)),  # (D,)
                   bool(bn_param.get("frozen", False)))


def ema_update(running, batch_value, momentum=DEFAULT_MOMENTUM):
    """One moving-average step: keep `momentum` of the old value, mix in the rest of the new."""
    return momentum * running + (1 - momentum) * batch_value


def _validate(x, gamma, beta):
    """Raise a clear ValueError for inputs the layer cannot normalise."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"batchnorm expects x of shape (N, D), got shape {x.shape}")
    D = x.shape[1]
    for name, p in (("gamma", gamma), ("beta", beta)):
        if np.shape(p) != (D,):
            raise ValueError(f"{name} must have shape ({D},) to match x's {D} features, "
                             f"got {np.shape(p)}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or infinity; batch statistics would be meaningless")


def batchnorm_forward(x, gamma, beta, bn_param):
    """Normalise each feature of x over the batch, then scale by gamma and shift by beta."""
    _validate(x, gamma, beta)
    p = read_bn_param(bn_param, x.shape[1], x.dtype)
    N, D = x.shape

    if p.mode == "train":
        if N < 2 and not p.frozen:
            # One example has zero variance: x_hat would be 0 and the layer would output beta.
            raise ValueError("train mode needs at least 2 examples per batch; use mode='test'")
        mu = x.mean(axis=0)  # (D,)
        xmu = x - mu  # (N, D)
        sq = xmu**2  # (N, D)
        var = sq.mean(axis=0)  # (D,)  biased: divide by N, as the frameworks do
        std = np.sqrt(var + p.eps)  # (D,)  eps inside the root keeps tiny variances stable
        inv_std = 1.0 / std  # (D,)
        x_hat = xmu * inv_std  # (N, D)
        out = gamma * x_hat + beta  # (N, D)
        if not p.frozen:
            bn_param["running_mean"] = ema_update(p.running_mean, mu, p.momentum)  # (D,)
            bn_param["running_var"] = ema_update(p.running_var, var, p.momentum)  # (D,)
        # Names match the nodes of the computational graph in notebook 03.
        cache = {"x": x, "mu": mu, "xmu": xmu, "sq": sq, "var": var, "std": std,
                 "inv_std": inv_std, "x_hat": x_hat, "gamma": gamma, "beta": beta, "eps": p.eps}
    else:
        std = np.sqrt(p.running_var + p.eps)  # (D,)
        x_hat = (x - p.running_mean) / std  # (N, D)
        out = gamma * x_hat + beta  # (N, D)
        cache = {"x": x, "x_hat": x_hat, "inv_std": 1.0 / std, "gamma": gamma, "beta": beta,
                 "eps": p.eps, "mode": "test"}
    return out, cache


def batchnorm_backward_staged(dout, cache):
    """The backward pass walked node by node along the forward graph (see notebook 03).

    Returns (grads, paths): grads maps each node of the graph to the gradient arriving there, in
    the order the walk reaches them (output first); paths maps the nodes where two gradients add
    to each part, named by the consumer it comes through.
    """
    x_hat, gamma = cache["x_hat"], cache["gamma"]
    xmu, var, eps, inv_std = cache["xmu"], cache["var"], cache["eps"], cache["inv_std"]
    N = dout.shape[0]

    dbeta = dout.sum(axis=0)  # (D,)   out = gx + beta: beta is shared by all N rows
    dgx = dout  # (N, D)   gx = gamma * x_hat
    dgamma = (dgx * x_hat).sum(axis=0)  # (D,)
    dx_hat = dgx * gamma  # (N, D)
    # x_hat = xmu * inv_std: inv_std is shared by the whole column, so its gradient sums over N.
    dinv_std = (dx_hat * xmu).sum(axis=0)  # (D,)
    dstd = -dinv_std / (var + eps)  # (D,)  d(1/s)/ds = -1/s^2 = -1/(var + eps)
    dvar = dstd * 0.5 / np.sqrt(var + eps)  # (D,)
    dsq = np.broadcast_to(dvar / N, xmu.shape)  # (N, D)   var = mean(sq): an equal share per row
    dxmu_direct = dx_hat * inv_std  # (N, D)   first path into xmu, through x_hat
    dxmu_var = 2 * xmu * dsq  # (N, D)   second path into xmu, through the variance
    dxmu = dxmu_direct + dxmu_var  # (N, D)
    dmu = -dxmu.sum(axis=0)  # (D,)   xmu = x - mu
    dx_mu = np.broadcast_to(dmu / N, xmu.shape)  # (N, D)   mu = mean(x)
    dx = dxmu + dx_mu  # (N, D)   two paths into x: directly into xmu, and through mu
    grads = {"out": dout, "beta": dbeta, "gx": dgx, "gamma": dgamma, "x_hat": dx_hat,
             "inv_std": dinv_std, "std": dstd, "var": dvar, "sq": dsq, "xmu": dxmu, "mu": dmu,
             "x": dx}
    paths = {"xmu": {"via x_hat": dxmu_direct, "via sq -> var": dxmu_var},
             # The variance path adds 0 to dmu: the deviations xmu of a column sum to zero.
             "mu": {"via x_hat": -dxmu_direct.sum(axis=0), "via sq -> var": -dxmu_var.sum(axis=0)},
             "x": {"via xmu": dxmu, "via mu": dx_mu}}
    return grads, paths


def batchnorm_backward(dout, cache):
    """Gradients (dx, dgamma, dbeta) from the staged backward pass."""
    grads, _ = batchnorm_backward_staged(dout, cache)
    return grads["x"], grads["gamma"], grads["beta"]


def batchnorm_backward_alt(dout, cache):
    """Closed-form backward pass: the staged one simplified on paper."""
    x_hat, gamma, inv_std = cache["x_hat"], cache["gamma"], cache["inv_std"]
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)  # (D,)
    dgamma = (dout * x_hat).sum(axis=0)  # (D,)
    if cache.get("mode") == "test":
        # Running statistics are constants here: BN is a fixed per-feature affine map of x.
        return dout * gamma * inv_std, dgamma, dbeta  # (N, D), (D,), (D,)
    # dx = gamma/(N*std) * (N*dout - sum(dout) - x_hat * sum(dout * x_hat))
    dx = (gamma * inv_std / N) * (N * dout - dbeta - x_hat * dgamma)  # (N, D)
    return dx, dgamma, dbeta


def tiny_batch(N=3, D=2, seed=0):
    """A tiny float64 batch with random gamma, beta and upstream gradient (never all ones)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(1.0, 2.0, (N, D))  # (N, D)
    gamma = rng.uniform(0.5, 2.0, D)  # (D,)
    beta = rng.normal(0.0, 1.0, D)  # (D,)
    dout = rng.normal(0.0, 1.0, (N, D))  # (N, D)
    return x, gamma, beta, dout
