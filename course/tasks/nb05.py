"""Graded exercises of notebook 05: spatial batch norm and layer norm."""

import numpy as np

from course.batchnorm import (
    DEFAULT_EPS,
    DEFAULT_MOMENTUM,
    batchnorm_backward_alt,
    batchnorm_forward,
)
from course.norms import (
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from course.tasks.base import Case, Mistake, Task, explicit_bn_param
from course.tasks.diagnose import (
    Gradient,
    Normalised,
    Running,
    bn_terms,
    dgamma_view,
    eps_of,
    term_names,
)

NOTEBOOK = "05_cnn_and_layernorm"


# ---- spatial batch norm: known mistakes ---------------------------------------------------------

def _per_activation_forward(x, gamma, beta, bn_param):
    """Statistics over N only: every (c, h, w) position gets its own mean and variance."""
    N, C, H, W = x.shape
    gamma_rep, beta_rep = np.repeat(gamma, H * W), np.repeat(beta, H * W)  # (C*H*W,)
    out, cache = batchnorm_forward(x.reshape(N, -1), gamma_rep, beta_rep, bn_param)
    return out.reshape(x.shape), (cache, x.shape)  # running stats (C*H*W,), like the statistics


def _per_activation_backward(dout, cache):
    bn_cache, (N, C, H, W) = cache
    dx, dg, db = batchnorm_backward_alt(dout.reshape(N, -1), bn_cache)
    return dx.reshape(N, C, H, W), dg.reshape(C, -1).sum(1), db.reshape(C, -1).sum(1)


def _no_transpose_forward(x, gamma, beta, bn_param):
    """x.reshape(-1, C) straight from (N, C, H, W): each 'column' mixes several channels."""
    out, cache = batchnorm_forward(x.reshape(-1, x.shape[1]), gamma, beta, bn_param)
    return out.reshape(x.shape), (cache, x.shape)


def _no_transpose_backward(dout, cache):
    bn_cache, shape = cache
    dx, dg, db = batchnorm_backward_alt(dout.reshape(-1, shape[1]), bn_cache)
    return dx.reshape(shape), dg, db


def _channel_rows_forward(x, gamma, beta, bn_param):
    """BN per channel on the (N*H*W, C) rows, built from notebook 02's batchnorm_forward: the
    mistakes below start from it (the grading copy of notebook 05 has no spatial reference)."""
    N, C, H, W = x.shape
    out, cache = batchnorm_forward(x.transpose(0, 2, 3, 1).reshape(-1, C), gamma, beta, bn_param)
    return out.reshape(N, H, W, C).transpose(0, 3, 1, 2), (cache, x.shape)  # (N, C, H, W)


def _channel_rows_backward(dout, cache):
    bn_cache, (N, C, H, W) = cache
    dx, dg, db = batchnorm_backward_alt(dout.transpose(0, 2, 3, 1).reshape(-1, C), bn_cache)
    return dx.reshape(N, H, W, C).transpose(0, 3, 1, 2), dg, db


def _backward_no_transpose(dout, cache):
    """The forward is right; the backward reshapes dout to (N*H*W, C) without moving the
    channels last first, so each row mixes channels (dx is transposed back as it should be)."""
    bn_cache, (N, C, H, W) = cache
    dx, dg, db = batchnorm_backward_alt(dout.reshape(-1, C), bn_cache)
    return dx.reshape(N, H, W, C).transpose(0, 3, 1, 2), dg, db


def _gamma_last_axis_forward(x, gamma, beta, bn_param):
    """Channel statistics right, but gamma (C,) broadcast against the last axis, W."""
    ones, zeros = np.ones_like(gamma), np.zeros_like(beta)
    x_hat, cache = _channel_rows_forward(x, ones, zeros, bn_param)  # (N, C, H, W)
    return gamma * x_hat + beta, (cache, x_hat, gamma)


def _gamma_last_axis_backward(dout, cache):
    bn_cache, x_hat, gamma = cache
    dx, _, _ = _channel_rows_backward(dout * gamma, bn_cache)
    return dx, (dout * x_hat).sum(axis=(0, 1, 2)), dout.sum(axis=(0, 1, 2))


def _x_hat_from_cache(cache):
    """x_hat of the reference cache, back in (N, C, H, W) layout."""
    bn_cache, (N, C, H, W) = cache
    return bn_cache["x_hat"].reshape(N, H, W, C).transpose(0, 3, 1, 2)


def _per_position_params_backward(dout, cache):
    """dx right, but dgamma/dbeta summed over N only: one parameter per activation."""
    dx, _, _ = _channel_rows_backward(dout, cache)
    x_hat = _x_hat_from_cache(cache)  # (N, C, H, W)
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def _spatial_cases(rng):
    def case(label, shape, scales, far=0.0, **param):
        N, C, H, W = shape
        scale = np.asarray(scales).reshape(1, C, 1, 1)
        x = rng.normal(0.0, 1.0, shape) * scale + rng.normal(0.0, 3.0, (1, C, 1, 1))
        x[:, -1] += far  # a channel far from zero: a one-pass E[x²] − E[x]² variance cancels
        # No running statistics yet: the layer starts them (zeros and ones) on its first call.
        bn_param = {**explicit_bn_param(), **param}  # param: an eps or momentum of its own
        return Case(label, {"x": x, "gamma": rng.normal(1.0, 0.5, C),
                            "beta": rng.normal(0.0, 1.0, C), "bn_param": bn_param,
                            "dout": rng.normal(size=shape)})
    # W equals C in every case, so a (C,) gamma broadcast against W runs silently and is named.
    return [case("3 channels on very different scales, x (4, 3, 5, 3)", (4, 3, 5, 3),
                 [0.1, 1.0, 10.0]),
            case("two images, 4 channels, x (2, 4, 3, 4), eps 1e-3, momentum 0.8", (2, 4, 3, 4),
                 [1.0, 2.0, 0.5, 4.0], eps=1e-3, momentum=0.8),
            case("a batch of 6 with 2 channels, the second near 1e6, x (6, 2, 4, 2)",
                 (6, 2, 4, 2), [3.0, 0.3], far=1e6)]


def _spatial_run(fns, inputs):
    forward, backward = fns
    bn_param = inputs["bn_param"]
    out, cache = forward(inputs["x"], inputs["gamma"], inputs["beta"], bn_param)
    dx, dgamma, dbeta = backward(inputs["dout"], cache)
    # Test mode must use the running statistics this training step has just updated.
    out_test, _ = forward(inputs["x"], inputs["gamma"], inputs["beta"],
                          {**bn_param, "mode": "test"})
    return {"out": out, "dx": dx, "dgamma": dgamma, "dbeta": dbeta,
            "running_mean": np.ravel(bn_param["running_mean"]),
            "running_var": np.ravel(bn_param["running_var"]), "out_test": out_test}


# ---- layer norm: known mistakes -----------------------------------------------------------------

def _standardize(x, axis, ddof, eps, eps_outside):
    """x_hat along an axis, for the mistake variants; returns x_hat and what backward needs."""
    M = x.shape[axis]
    xmu = x - x.mean(axis=axis, keepdims=True)
    var = (xmu**2).sum(axis=axis, keepdims=True) / (M - ddof)
    s = np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps)
    dsdvar = 0.5 / np.sqrt(var) if eps_outside else 0.5 / s
    return xmu / s, (xmu, s, dsdvar, axis, M, ddof)


def _standardize_backward(dx_hat, cache, through_stats=True):
    xmu, s, dsdvar, axis, M, ddof = cache
    if not through_stats:
        return dx_hat / s
    dvar = -(dx_hat * xmu).sum(axis=axis, keepdims=True) / s**2 * dsdvar
    dxmu = dx_hat / s + dvar * 2 * xmu / (M - ddof)
    return dxmu - dxmu.mean(axis=axis, keepdims=True)


def _ln_variant(axis=1, ddof=0, eps_outside=False, through_stats=True):
    def forward(x, gamma, beta, ln_param):
        x_hat, c = _standardize(x, axis, ddof, ln_param.get("eps", DEFAULT_EPS), eps_outside)
        return gamma * x_hat + beta, (x_hat, gamma, c)

    def backward(dout, cache):
        x_hat, gamma, c = cache
        dx = _standardize_backward(dout * gamma, c, through_stats)
        return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)
    return forward, backward


def _ln_backward_bn_axes(dout, cache):
    """Batch norm's closed-form backward copied as it is: sums over the batch (axis 0) and N,
    where layer norm's run over each example's D features (the forward is right)."""
    x_hat, gamma, (_, s, *_) = cache
    N = dout.shape[0]
    dbeta, dgamma = dout.sum(axis=0), (dout * x_hat).sum(axis=0)  # (D,), (D,)
    return gamma / (N * s) * (N * dout - dbeta - x_hat * dgamma), dgamma, dbeta


def _ln_cases(rng):
    def case(label, N, D, scale=1.0, eps=DEFAULT_EPS, far=0.0):
        x = (rng.normal(0.0, 1.0, (N, D)) * rng.uniform(0.5, 3.0, (N, 1))
             + rng.normal(0.0, 2.0, (N, 1))) * scale
        x[-1] += far  # an example far from zero: a one-pass E[x²] − E[x]² variance cancels
        return Case(label, {"x": x, "gamma": rng.normal(1.0, 0.5, D),
                            "beta": rng.normal(0.0, 1.0, D), "ln_param": {"eps": eps},
                            "dout": rng.normal(size=(N, D))})
    return [case("examples with different offsets and scales, the last near 1e6, x (5, 6)", 5, 6,
                 far=1e6),
            case("a single example, x (1, 4): layer norm needs no batch", 1, 4),
            case("tiny activations, where ε sits matters, x (4, 3), eps 1e-4", 4, 3, scale=1e-2,
                 eps=1e-4)]


def _ln_run(fns, inputs):
    forward, backward = fns
    out, cache = forward(inputs["x"], inputs["gamma"], inputs["beta"], inputs["ln_param"])
    dx, dgamma, dbeta = backward(inputs["dout"], cache)
    return {"out": out, "dx": dx, "dgamma": dgamma, "dbeta": dbeta}


# ---- what the diagnosis needs to know (wording only) ---------------------------------------------

def _channels(v):
    return np.reshape(v, (1, -1, 1, 1))  # (1, C, 1, 1)  lines up with the channel axis


def _to_rows(a):
    N, C, H, W = a.shape
    return a.transpose(0, 2, 3, 1).reshape(-1, C)  # (N*H*W, C)


def _spatial_symbols(inputs):
    x = inputs["x"]
    N, C, H, W = x.shape
    eps = eps_of("bn_param")(inputs)
    return {"N": N * H * W, "count": "N·H·W", "γ": _channels(inputs["gamma"]),
            "β": _channels(inputs["beta"]),
            "σ": np.sqrt(x.var(axis=(0, 2, 3), keepdims=True) + eps)}  # (1, C, 1, 1)


def _spatial_terms(inputs):
    _, (bn_cache, _) = spatial_batchnorm_forward(inputs["x"], inputs["gamma"], inputs["beta"],
                                                 {"mode": "train"})
    return bn_terms(bn_cache["x_hat"], _to_rows(inputs["dout"]) * inputs["gamma"],
                    bn_cache["inv_std"])


def _spatial_running(inputs):
    """The running (mean, var) per channel after the case's one train step."""
    p = inputs["bn_param"]
    rows = _to_rows(inputs["x"])  # (N*H*W, C)
    m, C = p.get("momentum", DEFAULT_MOMENTUM), rows.shape[1]
    return (m * p.get("running_mean", np.zeros(C)) + (1 - m) * rows.mean(axis=0),
            m * p.get("running_var", np.ones(C)) + (1 - m) * rows.var(axis=0))


def _spatial_buffer(stat):
    default = np.zeros if stat == "mean" else np.ones
    return Running(
        start=lambda inputs: inputs["bn_param"].get(f"running_{stat}",
                                                    default(inputs["x"].shape[1])),
        batches=lambda inputs: [_to_rows(inputs["x"])],
        keep=lambda inputs: inputs["bn_param"].get("momentum", DEFAULT_MOMENTUM), stat=stat)


def _spatial_view(stats):
    return Normalised(
        source=lambda inputs: (inputs["x"], _channels(inputs["gamma"]),
                               _channels(inputs["beta"])),
        eps=eps_of("bn_param"), rows=_to_rows,
        over="per channel over N, H and W (axis=(0, 2, 3))",
        across="across the channels at each position", stats=stats, group="channel",
        running=_spatial_running)


_SPATIAL_GRADIENT = Gradient(
    terms=_spatial_terms, rows=_to_rows,
    names=term_names("the path through the channel mean, summed over N, H and W",
                     "the path through the channel variance", direct="the direct term dout·γ/σ"),
    scale_hints={"1/γ": "γ is missing: dx_hat = dout * gamma (per channel)",
                 "N·H·W": "the count is N·H·W: one division by it is missing"},
    sums="over N, H and W, per channel", group="channel")


def _spatial_dgamma_parts(inputs):
    _, (bn_cache, _) = spatial_batchnorm_forward(inputs["x"], inputs["gamma"], inputs["beta"],
                                                 {"mode": "train"})
    return _to_rows(inputs["dout"]), _to_rows(inputs["x"]), bn_cache["x_hat"]


def _ln_dgamma_parts(inputs):
    _, cache = layernorm_forward(inputs["x"], inputs["gamma"], inputs["beta"],
                                 inputs["ln_param"])
    return inputs["dout"], inputs["x"], cache["x_hat"]


def _ln_symbols(inputs):
    x = inputs["x"]
    eps = eps_of("ln_param")(inputs)
    return {"N": x.shape[1], "count": "D", "γ": inputs["gamma"], "β": inputs["beta"],
            "σ": np.sqrt(x.var(axis=1, keepdims=True) + eps)}  # (N, 1); a group has D values


def _ln_terms(inputs):
    _, cache = layernorm_forward(inputs["x"], inputs["gamma"], inputs["beta"],
                                 inputs["ln_param"])
    return bn_terms(cache["x_hat"].T, (inputs["dout"] * inputs["gamma"]).T,
                    cache["rows"]["inv_std"])


def _transpose(a):
    return a.T


_LN_VIEW = Normalised(
    source=lambda inputs: (inputs["x"], inputs["gamma"], inputs["beta"]),
    eps=eps_of("ln_param"), rows=_transpose,
    over="per example over its D features (axis=1, keepdims=True)",
    across="over the batch (axis=0), which is batch norm", group="example",
    has_running=False)

_LN_GRADIENT = Gradient(
    terms=_ln_terms, rows=_transpose,
    names=term_names("the path through each example's mean, summed over its features",
                     "the path through each example's variance", g="dx̂",
                     direct="the direct term dout·γ/σ"),
    scale_hints={"1/γ": "γ is missing: dx_hat = dout * gamma before the row backward"},
    sums="over each example's D features, per example", group="example")


TASKS = [
    Task(notebook=NOTEBOOK, points=3,
         checks="forward, backward (random upstream gradient), running statistics and test mode "
                "on random (N, C, H, W) feature maps",
         reference=(spatial_batchnorm_forward, spatial_batchnorm_backward),
         may_use=(batchnorm_forward, "course.batchnorm.batchnorm_backward", batchnorm_backward_alt),
         make_cases=_spatial_cases, run=_spatial_run, mutable=("bn_param",),
         symbols=_spatial_symbols, views={"out": _spatial_view("batch"),
                                          "out_test": _spatial_view("running"),
                                          "dx": _SPATIAL_GRADIENT,
                                          "dgamma": dgamma_view(_spatial_dgamma_parts),
                                          "running_mean": _spatial_buffer("mean"),
                                          "running_var": _spatial_buffer("var")},
         mistakes=(
             Mistake("per_activation", "statistics were taken over the batch axis only, so every "
                     "(channel, row, column) position got its own mean and variance: a channel is "
                     "one feature, so average over N, H and W together (axes 0, 2, 3)",
                     (_per_activation_forward, _per_activation_backward)),
             Mistake("no_transpose", "x.reshape(-1, C) without moving the channels last first "
                     "mixes different channels in one column: transpose to (N, H, W, C) before "
                     "reshaping, and transpose back afterwards",
                     (_no_transpose_forward, _no_transpose_backward)),
             Mistake("backward_no_transpose", "the forward pass is right, but the backward "
                     "reshapes dout to (N·H·W, C) without moving the channels last first, so its "
                     "rows mix channels: transpose dout to (N, H, W, C) before reshaping, as the "
                     "forward does with x", (_channel_rows_forward, _backward_no_transpose)),
             Mistake("gamma_last_axis", "γ and β were applied along the last axis (W) instead of "
                     "the channels: a (C,) vector lines up with the LAST axis of (N, C, H, W), so "
                     "reshape γ and β to (1, C, 1, 1) or apply them in the (N·H·W, C) layout",
                     (_gamma_last_axis_forward, _gamma_last_axis_backward)),
             Mistake("per_position_params", "dgamma and dbeta have shape (C, H, W), one parameter "
                     "per activation (2·C·H·W in all): each channel has ONE γ and ONE β, so sum "
                     "their gradients over N, H and W to get shape (C,)",
                     (_channel_rows_forward, _per_position_params_backward)),
         )),
    Task(notebook=NOTEBOOK, points=3,
         checks="forward and backward (random upstream gradient) on random (N, D) batches",
         reference=(layernorm_forward, layernorm_backward),
         may_use=(),
         make_cases=_ln_cases, run=_ln_run, mutable=("ln_param",),
         symbols=_ln_symbols, views={"out": _LN_VIEW, "dx": _LN_GRADIENT,
                                     "dgamma": dgamma_view(_ln_dgamma_parts)},
         mistakes=(
             Mistake("batch_axis", "the mean and variance were taken over the batch (axis 0), "
                     "which is batch norm: layer norm standardises each example over its own D "
                     "features (axis 1, keepdims=True)", _ln_variant(axis=0)),
             Mistake("ddof1", "the variance was computed with ddof=1 (dividing by D - 1): "
                     "normalise with the biased variance, dividing by D",
                     _ln_variant(ddof=1)),
             Mistake("eps_outside", "ε was added outside the square root (std + eps): use "
                     "sqrt(var + eps), which matters when an example's variance is tiny",
                     _ln_variant(eps_outside=True)),
             Mistake("backward_bn_axes", "the backward is batch norm's closed form as it "
                     "stands, summing over the batch (axis 0) with N: layer norm's statistics run "
                     "over each example's D features, so dx = γ/(D·σ)·(D·dout − Σ_j dout − "
                     "x̂·Σ_j(dout·x̂)) with the sums over axis 1 (dgamma and dbeta still sum "
                     "over axis 0)", (_ln_variant()[0], _ln_backward_bn_axes)),
             Mistake("stats_constant", "dx treats the mean and variance as constants "
                     "(dx = γ·dout/σ): they depend on x too, so add the terms that flow through "
                     "μ and σ² (or reuse batch norm's backward on the transpose)",
                     _ln_variant(through_stats=False)),
         )),
]
