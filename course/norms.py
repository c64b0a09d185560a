"""Normalisations for other axes: spatial BN for (N, C, H, W), LayerNorm and GroupNorm.

Each one is the same computation as course.batchnorm, applied to a reshaped view of the data:
the only thing that changes is which entries share one mean and one variance.
"""

import numpy as np

from course.batchnorm import DEFAULT_EPS, batchnorm_backward_alt, batchnorm_forward


def _to_rows(x):
    """(N, C, H, W) -> (N*H*W, C): every position of every image becomes one row of a batch."""
    N, C, H, W = x.shape
    return x.transpose(0, 2, 3, 1).reshape(-1, C)  # (N*H*W, C)


def _from_rows(rows, shape):
    """Undo _to_rows: (N*H*W, C) -> (N, C, H, W)."""
    N, C, H, W = shape
    return rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)  # (N, C, H, W)


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Batch norm for feature maps: statistics per channel over N, H and W; gamma, beta (C,)."""
    if np.ndim(x) != 4:
        raise ValueError(f"spatial batchnorm expects x of shape (N, C, H, W), got {np.shape(x)}")
    # The transpose puts channels last, so the reshape keeps each channel in its own column.
    out, cache = batchnorm_forward(_to_rows(x), gamma, beta, bn_param)  # (N*H*W, C)
    return _from_rows(out, x.shape), (cache, x.shape)


def spatial_batchnorm_backward(dout, cache):
    """Gradients of spatial batch norm: vanilla BN backward on the same (N*H*W, C) view."""
    bn_cache, shape = cache
    drows, dgamma, dbeta = batchnorm_backward_alt(_to_rows(dout), bn_cache)  # (N*H*W, C)
    return _from_rows(drows, shape), dgamma, dbeta


def _standardize_rows(x, eps):
    """Standardise each row of a 2-D array; returns x_hat and the (D, N)-view BN cache."""
    # A row's statistics are a column's statistics of the transpose: reuse vanilla BN as is.
    D = x.shape[1]
    if D < 2:
        raise ValueError("a row with one entry has no variance to normalise by")
    ones, zeros = np.ones(x.shape[0]), np.zeros(x.shape[0])  # (N,)
    x_hat_t, cache = batchnorm_forward(x.T, ones, zeros, {"mode": "train", "eps": eps})  # (D, N)
    return x_hat_t.T, cache  # (N, D)


def _standardize_rows_backward(dx_hat, cache):
    """Gradient of _standardize_rows w.r.t. its input."""
    return batchnorm_backward_alt(dx_hat.T, cache)[0].T  # (N, D)


def layernorm_forward(x, gamma, beta, ln_param):
    """Layer norm: each example standardised over its D features; gamma, beta (D,)."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"layernorm expects x of shape (N, D), got shape {x.shape}")
    eps = ln_param.get("eps", DEFAULT_EPS)
    x_hat, row_cache = _standardize_rows(x, eps)  # (N, D)
    out = gamma * x_hat + beta  # (N, D)  one gamma/beta per feature, as in BN
    return out, {"x_hat": x_hat, "gamma": gamma, "rows": row_cache}


def layernorm_backward(dout, cache):
    """Gradients of layer norm w.r.t. x, gamma and beta."""
    x_hat, gamma = cache["x_hat"], cache["gamma"]
    dbeta = dout.sum(axis=0)  # (D,)
    dgamma = (dout * x_hat).sum(axis=0)  # (D,)
    dx = _standardize_rows_backward(dout * gamma, cache["rows"])  # (N, D)
    return dx, dgamma, dbeta


def groupnorm_forward(x, gamma, beta, G, gn_param):
    """Group norm: statistics per example over each group of C/G channels and all positions."""
    N, C, H, W = x.shape
    if C % G:
        raise ValueError(f"G={G} groups must divide the C={C} channels")
    eps = gn_param.get("eps", DEFAULT_EPS)
    # Each (example, group) pair is one row: GroupNorm is LayerNorm on these rows.
    x_hat, row_cache = _standardize_rows(x.reshape(N * G, -1), eps)  # (N*G, C/G*H*W)
    x_hat = x_hat.reshape(N, C, H, W)  # (N, C, H, W)
    out = gamma.reshape(1, C, 1, 1) * x_hat + beta.reshape(1, C, 1, 1)  # (N, C, H, W)
    return out, {"x_hat": x_hat, "gamma": gamma, "rows": row_cache, "G": G}


def groupnorm_backward(dout, cache):
    """Gradients of group norm w.r.t. x, gamma (C,) and beta (C,)."""
    x_hat, gamma, G = cache["x_hat"], cache["gamma"], cache["G"]
    N, C, H, W = dout.shape
    dbeta = dout.sum(axis=(0, 2, 3))  # (C,)
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3))  # (C,)
    dx_hat = (dout * gamma.reshape(1, C, 1, 1)).reshape(N * G, -1)  # (N*G, C/G*H*W)
    dx = _standardize_rows_backward(dx_hat, cache["rows"]).reshape(N, C, H, W)  # (N, C, H, W)
    return dx, dgamma, dbeta


KINDS = ("batch", "layer", "instance", "group")  # which entries of (N, C, H, W) share statistics


def num_groups(kind, channels, groups=2):
    """GroupNorm's G for a kind of normalisation (None for batch norm, which has no groups): the
    one kind -> groups table of the course (layer 1, instance C, group `groups`)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return {"batch": None, "layer": 1, "instance": channels, "group": groups}[kind]


def normalize(x, kind, groups=2, eps=DEFAULT_EPS):
    """x_hat (no gamma, beta) of x (N, C, H, W) under batch, layer, instance or group norm."""
    C = x.shape[1]
    G, ones, zeros = num_groups(kind, C, groups), np.ones(C), np.zeros(C)  # G, (C,), (C,)
    if kind == "batch":
        return spatial_batchnorm_forward(x, ones, zeros, {"mode": "train", "eps": eps})[0]
    return groupnorm_forward(x, ones, zeros, G, {"eps": eps})[0]  # (N, C, H, W)


def instance_norm(x, eps=DEFAULT_EPS):
    """x_hat of instance norm written out directly: each channel of each image over (H, W)."""
    mu = x.mean(axis=(2, 3), keepdims=True)  # (N, C, 1, 1)
    return (x - mu) / np.sqrt(x.var(axis=(2, 3), keepdims=True) + eps)  # (N, C, H, W)


def groupnorm_special_cases(x, eps=DEFAULT_EPS):
    """max |difference| of GroupNorm (gamma 1, beta 0) with G = 1 against layer norm over
    (C, H, W), and with G = C against instance norm written out: (two floats)."""
    N, C, H, W = x.shape
    gn1 = groupnorm_forward(x, np.ones(C), np.zeros(C), 1, {"eps": eps})[0]
    ln = layernorm_forward(x.reshape(N, -1), np.ones(C * H * W), np.zeros(C * H * W),
                           {"eps": eps})[0]
    gnC = groupnorm_forward(x, np.ones(C), np.zeros(C), C, {"eps": eps})[0]
    return (float(np.abs(gn1 - ln.reshape(x.shape)).max()),
            float(np.abs(gnC - instance_norm(x, eps)).max()))
