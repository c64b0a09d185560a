"""RMSNorm (Zhang & Sennrich, 2019): each example divided by the root mean square of its
features, then scaled by gamma. No mean is subtracted and there is no beta."""

import numpy as np

from course.batchnorm import DEFAULT_EPS


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
