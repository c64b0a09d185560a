"""Vectorised convolution and 2x2 max-pooling for (N, C, H, W) arrays, forward and backward."""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _windows(x, HH, WW, stride):
    """Every HH x WW patch of x as a read-only view: (N, C, H', W', HH, WW)."""
    win = sliding_window_view(x, (HH, WW), axis=(2, 3))  # (N, C, H-HH+1, W-WW+1, HH, WW)
    return win[:, :, ::stride, ::stride]  # (N, C, H', W', HH, WW)


def conv_forward(x, w, b, conv_param):
    """Cross-correlate x (N, C, H, W) with filters w (F, C, HH, WW), add b (F,)."""
    stride, pad = conv_param.get("stride", 1), conv_param.get("pad", 0)
    F, C, HH, WW = w.shape
    if x.shape[1] != C:
        raise ValueError(f"x has {x.shape[1]} channels but the filters expect {C}")
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # (N, C, H+2p, W+2p)
    win = _windows(xp, HH, WW, stride)  # (N, C, H', W', HH, WW)
    # Contract channels and the filter window in one BLAS call instead of looping over positions.
    out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))  # (N, H', W', F)
    out = out.transpose(0, 3, 1, 2) + b.reshape(1, F, 1, 1)  # (N, F, H', W')
    return out, (x, w, stride, pad)


def conv_backward(dout, cache):
    """Gradients of conv_forward w.r.t. x, w and b."""
    x, w, stride, pad = cache
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))  # (N, C, Hp, Wp)
    Hp, Wp = xp.shape[2:]
    db = dout.sum(axis=(0, 2, 3))  # (F,)
    dw = np.tensordot(dout, _windows(xp, HH, WW, stride),
                      axes=([0, 2, 3], [0, 2, 3]))  # (F, C, HH, WW)
    # dx: spread dout back over each window. With stride s, first put s-1 zeros between the
    # outputs; then a "full" convolution with the flipped filters sends each output to its inputs.
    Ho, Wo = dout.shape[2:]
    dil = np.zeros((N, F, (Ho - 1) * stride + 1, (Wo - 1) * stride + 1))  # (N, F, Hd, Wd)
    dil[:, :, ::stride, ::stride] = dout
    # Pad by the filter size minus one, plus whatever rows/columns the stride never reached.
    extra_h, extra_w = Hp - HH + 1 - dil.shape[2], Wp - WW + 1 - dil.shape[3]
    full = np.pad(dil, ((0, 0), (0, 0), (HH - 1, HH - 1 + extra_h), (WW - 1, WW - 1 + extra_w)))
    dxp = np.tensordot(_windows(full, HH, WW, 1), w[:, :, ::-1, ::-1],
                       axes=([1, 4, 5], [0, 2, 3]))  # (N, Hp, Wp, C)
    dx = dxp.transpose(0, 3, 1, 2)[:, :, pad:pad + H, pad:pad + W]  # (N, C, H, W)
    return dx, dw, db


def maxpool_forward(x, k=2):
    """Non-overlapping k x k max-pooling of x (N, C, H, W); H and W must be multiples of k."""
    N, C, H, W = x.shape
    if H % k or W % k:
        raise ValueError(f"{k}x{k} pooling needs H and W divisible by {k}, got {H}x{W}")
    # Gather each k x k block into the last axis: (N, C, H/k, W/k, k*k).
    blocks = x.reshape(N, C, H // k, k, W // k, k).transpose(0, 1, 2, 4, 3, 5)
    blocks = blocks.reshape(N, C, H // k, W // k, k * k)
    idx = blocks.argmax(axis=-1)[..., None]  # (N, C, H/k, W/k, 1) first maximum wins ties
    out = np.take_along_axis(blocks, idx, axis=-1)[..., 0]  # (N, C, H/k, W/k)
    return out, (x.shape, idx, k)


def maxpool_backward(dout, cache):
    """Route each output gradient to the one input that was the maximum of its block."""
    (N, C, H, W), idx, k = cache
    dblocks = np.zeros((N, C, H // k, W // k, k * k))  # (N, C, H/k, W/k, k*k)
    np.put_along_axis(dblocks, idx, dout[..., None], axis=-1)
    dx = dblocks.reshape(N, C, H // k, W // k, k, k).transpose(0, 1, 2, 4, 3, 5)
    return dx.reshape(N, C, H, W)  # (N, C, H, W)
