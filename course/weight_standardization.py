"""Weight standardisation (Qiao et al., 2019): each filter standardised over its fan-in before the
convolution, used with GroupNorm where batches are too small for BN (notebook 07)."""

import numpy as np

from course.batchnorm import DEFAULT_EPS
from course.claims import Claim
from course.conv import conv_forward
from course.norms import groupnorm_forward, spatial_batchnorm_forward


def weight_standardize(w, eps=DEFAULT_EPS):
    """Filters w (F, C, HH, WW) with each filter's C*HH*WW weights at mean 0 and variance 1."""
    flat = w.reshape(w.shape[0], -1)  # (F, C*HH*WW)
    mu = flat.mean(axis=1, keepdims=True)  # (F, 1)
    std = np.sqrt(flat.var(axis=1, keepdims=True) + eps)  # (F, 1)
    return ((flat - mu) / std).reshape(w.shape)  # (F, C, HH, WW)


def invariances(images, filters=6, seed=1, groups=2):
    """For six random 3x3 filters on images (N, 1, H, W): how much standardised filters change the
    convolution when the filters are scaled by 5 and shifted by 1, and how much image 0's
    normalised output changes between alone and in the batch, for GN and for BN (train mode)."""
    w = np.random.default_rng(seed).normal(size=(filters, images.shape[1], 3, 3))
    conv_param, zeros, ones = {"stride": 1, "pad": 1}, np.zeros(filters), np.ones(filters)
    z, _ = conv_forward(images, weight_standardize(w, eps=0.0), zeros, conv_param)  # (N, F, H, W)
    z5, _ = conv_forward(images, weight_standardize(5 * w + 1, eps=0.0), zeros, conv_param)
    gn_batch = groupnorm_forward(z, ones, zeros, groups, {})[0]
    gn_alone = groupnorm_forward(z[:1], ones, zeros, groups, {})[0]
    bn_batch = spatial_batchnorm_forward(z, ones, zeros, {"mode": "train"})[0]
    bn_alone = spatial_batchnorm_forward(z[:1], ones, zeros, {"mode": "train"})[0]
    return {"WS, filters x5 + 1": np.abs(z - z5).max(),
            "GN, alone vs batch": np.abs(gn_alone - gn_batch[:1]).max(),
            "BN, alone vs batch": np.abs(bn_alone - bn_batch[:1]).max()}


def claims(diff):
    """What invariances() shows."""
    return [Claim("the standardised convolution ignores each filter's scale and offset (to "
                  "rounding)",
                  diff["WS, filters x5 + 1"] < 1e-9, {"max change": diff["WS, filters x5 + 1"]}),
            Claim("GN gives image 0 the same output alone or in a batch; BN's changes",
                  diff["GN, alone vs batch"] < 1e-12 and diff["BN, alone vs batch"] > 0.1,
                  {"GN": diff["GN, alone vs batch"], "BN": diff["BN, alone vs batch"]})]
