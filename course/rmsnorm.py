"""RMSNorm (Zhang & Sennrich, 2019): each example divided by the root mean square of its
features, then scaled by gamma. No mean is subtracted and there is no beta."""

import numpy as np

from course.batchnorm import DEFAULT_EPS
from course.claims import Claim
from course.norms import layernorm_forward


def rmsnorm_forward(x, gamma, rms_param):
    """out = gamma * x / sqrt(mean(x**2 over the features of each example) + eps)."""
    eps = rms_param.get("eps", DEFAULT_EPS)
    ms = np.mean(x**2, axis=1, keepdims=True)  # (N, 1) mean square per example
    rms = np.sqrt(ms + eps)  # (N, 1) eps inside the root, as in BN
    x_hat = x / rms  # (N, D)
    return gamma * x_hat, {"x_hat": x_hat, "rms": rms, "gamma": gamma}  # (N, D)


def rmsnorm_backward(dout, cache):
    """Gradients (dx, dgamma): the direct path through x, and the path through the rms."""
    x_hat, rms, gamma = cache["x_hat"], cache["rms"], cache["gamma"]
    dgamma = (dout * x_hat).sum(axis=0)  # (D,) gamma is shared by all N examples
    dx_hat = dout * gamma  # (N, D)
    # d rms / d x_j = x_j / (D rms): the second term removes the part of dx_hat along x_hat.
    proj = np.mean(dx_hat * x_hat, axis=1, keepdims=True)  # (N, 1)
    return (dx_hat - x_hat * proj) / rms, dgamma  # (N, D), (D,)


def layernorm_gap(rms_forward=rmsnorm_forward, offsets=(0.0, 0.1, 1.0, 3.0), N=256, D=64, seed=0):
    """max |LayerNorm - RMSNorm| (gamma 1, beta 0) on rows with mean 0, sd 1, plus a common
    offset c (in standard deviations): {c: gap}; rms_forward may be a student's."""
    z = np.random.default_rng(seed).normal(size=(N, D))
    z = (z - z.mean(axis=1, keepdims=True)) / z.std(axis=1, keepdims=True)  # (N, D) mean 0, sd 1
    ones, zeros = np.ones(D), np.zeros(D)
    return {c: float(np.abs(layernorm_forward(z + c, ones, zeros, {})[0]
                            - rms_forward(z + c, ones, {})[0]).max()) for c in offsets}


def claims(gap):
    """What layernorm_gap shows."""
    return [Claim("on mean-zero rows RMSNorm equals LayerNorm to rounding", gap[0.0] < 1e-9,
                  {"gap": gap[0.0]}),
            Claim("an offset of 0.1 standard deviations changes the output by under 0.2; an "
                  "offset of 1 or more by more than 1 (the size of the outputs)",
                  gap[0.1] < 0.2 and min(v for c, v in gap.items() if c >= 1) > 1.0,
                  {"at 0.1": gap[0.1], "at 1": gap[1.0]})]
