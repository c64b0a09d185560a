"""Where LayerNorm sits in a residual (Transformer-style) block: pre-norm x + f(LN(x)) versus
post-norm LN(x + f(x)), in a deep stack of random blocks (notebook 07)."""

import numpy as np

from course.claims import Claim
from course.layers import affine_backward, affine_forward, relu_backward, relu_forward
from course.norms import layernorm_backward, layernorm_forward

PLACEMENTS = ("pre-norm", "post-norm")


def random_blocks(depth, D=64, seed=0):
    """Weights (W1, W2) of `depth` two-layer ReLU branches f(x) = relu(x W1) W2, He-scaled."""
    rng = np.random.default_rng(seed)
    return [(rng.normal(0.0, np.sqrt(2.0 / D), (D, D)), rng.normal(0.0, np.sqrt(1.0 / D), (D, D)))
            for _ in range(depth)]  # (D, D) each


def _branch(x, W1, W2):
    """f(x) and what its backward needs."""
    zero = np.zeros(W1.shape[1])
    h, c1 = affine_forward(x, W1, zero)  # (N, D)
    a, c2 = relu_forward(h)  # (N, D)
    out, c3 = affine_forward(a, W2, zero)  # (N, D)
    return out, (c1, c2, c3)


def _branch_backward(dout, caches):
    c1, c2, c3 = caches
    da = affine_backward(dout, c3)[0]  # (N, D)
    return affine_backward(relu_backward(da, c2), c1)[0]  # (N, D)


def stack(x, blocks, placement, dout):
    """Push x (N, D) through the blocks; return the output (N, D), the rms of the residual stream
    after each block (depth,) and dL/dx (N, D) for the upstream gradient dout at the output."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    D = x.shape[1]
    ones, zeros = np.ones(D), np.zeros(D)
    caches, rms = [], []
    for W1, W2 in blocks:
        if placement == "pre-norm":
            n, ln = layernorm_forward(x, ones, zeros, {})
            f, br = _branch(n, W1, W2)
            x = x + f  # (N, D) the residual stream is never normalised
        else:
            f, br = _branch(x, W1, W2)
            x, ln = layernorm_forward(x + f, ones, zeros, {})  # (N, D)
        caches.append((ln, br))
        rms.append(np.sqrt(np.mean(x**2)))
    g = dout  # (N, D)
    for ln, br in reversed(caches):
        if placement == "pre-norm":
            g = g + layernorm_backward(_branch_backward(g, br), ln)[0]  # identity path + branch
        else:
            s = layernorm_backward(g, ln)[0]  # through the norm, then both paths of x + f(x)
            g = s + _branch_backward(s, br)
    return x, np.array(rms), g


def growth(depths=(1, 4, 16, 64), seeds=(0, 1, 2), N=32, D=64):
    """Per depth and placement, over seeds: the rms of the stream at the output and the gradient
    at the input relative to the one at the output: {(depth, placement): (rms (seeds,),
    ratio (seeds,))}, for one fixed input (N, D) and upstream gradient."""
    rng = np.random.default_rng(0)
    x0, g_out = rng.normal(size=(N, D)), rng.normal(size=(N, D))  # (N, D) each
    out = {}
    for depth in depths:
        for placement in PLACEMENTS:
            runs = [stack(x0, random_blocks(depth, D, seed=s), placement, g_out) for s in seeds]
            out[depth, placement] = (np.array([r[1][-1] for r in runs]),
                                     np.array([np.linalg.norm(r[2]) / np.linalg.norm(g_out)
                                               for r in runs]))
    return out


def claims(g):
    """What the stacks show at initialisation; g from growth()."""
    deep, shallow = max(d for d, _ in g), min(d for d, _ in g)
    post, pre = g[deep, "post-norm"], g[deep, "pre-norm"]
    sqrt_ok = all(abs(g[d, "pre-norm"][0].mean() / np.sqrt(1 + d) - 1) < 0.1 for d, p in g
                  if p == "pre-norm")
    return [
        Claim("post-norm keeps the stream at rms 1 at every depth",
              all(np.allclose(v[0], 1.0, atol=1e-3) for (d, p), v in g.items() if p == "post-norm"),
              {f"rms at {deep} blocks": post[0].mean()}),
        Claim("pre-norm lets the stream grow with depth, within 10 % of √(1 + depth) on average",
              sqrt_ok and pre[0].min() > 5 * g[shallow, "pre-norm"][0].max(),
              {f"rms at {deep}": pre[0].mean(), "√(1 + depth)": float(np.sqrt(1 + deep))}),
        Claim("with pre-norm the gradient at the input is never smaller than at the output",
              min(v[1].min() for (d, p), v in g.items() if p == "pre-norm") > 1.0,
              {f"ratio at {deep}": pre[1].mean()}),
    ]
