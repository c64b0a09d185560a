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


def batchnorm_backward(dout, cache):
    """Backward pass walked node by node along the forward graph (see notebook 03)."""
    x_hat, gamma = cache["x_hat"], cache["gamma"]
    xmu, var, eps, inv_std = cache["xmu"], cache["var"], cache["eps"], cache["inv_std"]
    N = dout.shape[0]

    dbeta = dout.sum(axis=0)  # (D,)   out = gamma * x_hat + beta
    dgamma = (dout * x_hat).sum(axis=0)  # (D,)
    dx_hat = dout * gamma  # (N, D)
    # x_hat = xmu * inv_std: inv_std is shared by the whole column, so its gradient sums over N.
    dinv_std = (dx_hat * xmu).sum(axis=0)  # (D,)
    dxmu = dx_hat * inv_std  # (N, D)   first path into xmu
    dstd = -dinv_std / (var + eps)  # (D,)  d(1/s)/ds = -1/s^2 = -1/(var + eps)
    dvar = dstd * 0.5 / np.sqrt(var + eps)  # (D,)
    dsq = np.ones_like(xmu) * dvar / N  # (N, D)   var = mean(sq)
    dxmu = dxmu + 2 * xmu * dsq  # (N, D)   second path into xmu, through the variance
    dmu = -dxmu.sum(axis=0)  # (D,)   xmu = x - mu
    dx = dxmu + np.ones_like(xmu) * dmu / N  # (N, D)   mu = mean(x)
    return dx, dgamma, dbeta


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
