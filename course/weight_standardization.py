"""Weight standardisation (Qiao et al., 2019): each filter standardised over its fan-in before the
convolution, used with GroupNorm where batches are too small for BN (notebook 07)."""

import numpy as np

from course.batchnorm import DEFAULT_EPS


def weight_standardize(w, eps=DEFAULT_EPS):
    """Filters w (F, C, HH, WW) with each filter's C*HH*WW weights at mean 0 and variance 1."""
    flat = w.reshape(w.shape[0], -1)  # (F, C*HH*WW)
    mu = flat.mean(axis=1, keepdims=True)  # (F, 1)
    std = np.sqrt(flat.var(axis=1, keepdims=True) + eps)  # (F, 1)
    return ((flat - mu) / std).reshape(w.shape)  # (F, C, HH, WW)
