"""Folding test-mode batch normalization into the affine or convolution layer before it.

In test mode BN is a fixed per-channel affine map, y = s * z + t with s = gamma / sqrt(var + eps)
and t = beta - s * mean, so it can be merged into the weights of the layer that produced z.
"""

import copy

import numpy as np

from course.batchnorm import DEFAULT_EPS


def bn_scale_shift(gamma, beta, running_mean, running_var, eps=DEFAULT_EPS):
    """Test-mode BN as y = scale * z + shift: the per-channel scale and shift."""
    scale = gamma / np.sqrt(running_var + eps)  # (M,)  eps inside the root, as in the forward
    shift = beta - scale * running_mean  # (M,)
    return scale, shift


def fold_batchnorm(w, b, gamma, beta, running_mean, running_var, eps=DEFAULT_EPS):
    """Weights (D, M) and bias (M,) of one affine layer equal to affine -> test-mode BN."""
    scale, shift = bn_scale_shift(gamma, beta, running_mean, running_var, eps)  # (M,), (M,)
    # z = x @ w + b gives output channel m from column m of w: scale the columns.
    w_folded = w * scale  # (D, M)  broadcasts over rows, i.e. column m times scale[m]
    b_folded = b * scale + shift  # (M,)  = (b - mean) * scale + beta
    return w_folded, b_folded


def fold_batchnorm_conv(w, b, gamma, beta, running_mean, running_var, eps=DEFAULT_EPS):
    """Filters (F, C, HH, WW) and bias (F,) of one convolution equal to conv -> spatial BN."""
    scale, shift = bn_scale_shift(gamma, beta, running_mean, running_var, eps)  # (F,), (F,)
    # Output channel f comes from filter f alone: scale the whole filter (first axis).
    w_folded = w * scale[:, None, None, None]  # (F, C, HH, WW)
    b_folded = b * scale + shift  # (F,)
    return w_folded, b_folded


def fold_mlp(model, fold=fold_batchnorm):
    """A copy of a course.mlp.MLP with every BN layer folded into its affine layer (inference)."""
    folded = copy.deepcopy(model)
    for i, bn in enumerate(folded.bn):
        if bn is None:
            continue
        folded.W[i], folded.b[i] = fold(folded.W[i], folded.b[i], bn.gamma, bn.beta,
                                        bn.running_mean, bn.running_var, bn.eps)
        folded.bn[i] = None
    return folded.eval()
