"""PyTorch as an oracle: every normalisation of the course, forward and backward, against torch's
own layers (or, for Batch Renormalization, which torch does not ship, the paper's formula written
in torch ops and differentiated by autograd), in float64, to 1e-10, on Hypothesis-drawn shapes
with non-trivial gamma and beta."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from course.batch_renorm import batch_renorm_backward, batch_renorm_forward
from course.batchnorm import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward
from course.norms import (
    groupnorm_backward,
    groupnorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from course.rmsnorm import rmsnorm_backward, rmsnorm_forward
from course.running_stats import pytorch_running_update, to_pytorch_momentum

torch = pytest.importorskip("torch", reason="PyTorch is not installed (`make test` installs it)")
F = torch.nn.functional

TOL = 1e-10  # float64 round-off on these sizes is ~1e-14; 1e-10 leaves room and nothing more
EPS = st.sampled_from([1e-5, 1e-3])
MOMENTUM = st.sampled_from([0.9, 0.5, 0.99])  # the course's convention: weight of the OLD value
seeds = st.integers(0, 2**32 - 1)


def close(got, want):
    """Equal to TOL relative to the size of what torch computed."""
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else want
    np.testing.assert_allclose(got, want, rtol=TOL, atol=TOL * max(1.0, np.abs(want).max()))


def data(seed, shape, channels):
    """x with a different mean and scale per channel, gamma/beta far from (1, 0), and dout."""
    rng = np.random.default_rng(seed)
    C = shape[1]
    bcast = (1, C) + (1,) * (len(shape) - 2)
    x = rng.normal(size=shape) * rng.uniform(0.1, 5, C).reshape(bcast) \
        + rng.normal(0, 3, C).reshape(bcast)  # shape
    gamma, beta = rng.uniform(0.5, 2, channels), rng.normal(size=channels)  # (channels,)
    dout = rng.normal(size=shape)  # shape
    return x, gamma, beta, dout


def torch_grads(fn, x, gamma, beta, dout):
    """out = fn(x, gamma, beta) in torch and d(sum(out * dout)) / d(x, gamma, beta) by autograd."""
    xt, gt, bt = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, gamma,
                                                                                       beta))
    out = fn(xt, gt, bt)
    (out * torch.tensor(dout)).sum().backward()
    return out, xt.grad, gt.grad, bt.grad


@given(seed=seeds, N=st.integers(2, 12), D=st.integers(1, 6), eps=EPS, momentum=MOMENTUM)
def test_batchnorm_train_mode_and_its_buffers_match_torch(seed, N, D, eps, momentum):
    x, gamma, beta, dout = data(seed, (N, D), D)
    rng = np.random.default_rng(seed + 1)
    rm, rv = rng.normal(size=D), rng.uniform(0.5, 2, D)  # (D,), (D,) buffers from earlier batches
    bn_param = {"mode": "train", "eps": eps, "momentum": momentum,
                "running_mean": rm.copy(), "running_var": rv.copy()}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    tout, dx, dgamma, dbeta = torch_grads(
        lambda a, g, b: F.batch_norm(a, trm, trv, g, b, training=True,
                                     momentum=to_pytorch_momentum(momentum), eps=eps),
        x, gamma, beta, dout)
    close(out, tout)
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        for got, want in zip(backward(dout, cache), (dx, dgamma, dbeta), strict=True):
            close(got, want)
    # Running mean: the same moving average once momentum is converted (old weight <-> new).
    close(bn_param["running_mean"], trm)
    # Running variance: torch feeds the unbiased batch variance in, the course the biased one.
    # torch: m * rv + (1 - m) * var * N / (N - 1); the course: m * rv + (1 - m) * var.
    close(bn_param["running_var"], momentum * rv + (trv.numpy() - momentum * rv) * (N - 1) / N)
    # ... and the course's model of PyTorch's convention is exactly torch's.
    for got, want in zip(pytorch_running_update(rm, rv, x, to_pytorch_momentum(momentum)),
                         (trm, trv), strict=True):
        close(got, want)


@given(seed=seeds, N=st.integers(1, 8), D=st.integers(1, 6), eps=EPS)
def test_batchnorm_test_mode_matches_torch_eval(seed, N, D, eps):
    x, gamma, beta, dout = data(seed, (N, D), D)
    rng = np.random.default_rng(seed + 1)
    rm, rv = rng.normal(size=D), rng.uniform(0.5, 2, D)  # (D,), (D,)
    bn_param = {"mode": "test", "eps": eps, "running_mean": rm.copy(), "running_var": rv.copy()}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    trm, trv = torch.tensor(rm), torch.tensor(rv)
    tout, *grads = torch_grads(
        lambda a, g, b: F.batch_norm(a, trm, trv, g, b, training=False, eps=eps),
        x, gamma, beta, dout)
    close(out, tout)
    for got, want in zip(batchnorm_backward_alt(dout, cache), grads, strict=True):
        close(got, want)
    close(bn_param["running_mean"], rm)  # test mode leaves the buffers alone, in both
    close(trm, rm)


@given(seed=seeds, N=st.integers(1, 4), C=st.integers(1, 4), H=st.integers(1, 4),
       W=st.integers(1, 4), eps=EPS)
def test_spatial_batchnorm_matches_torch(seed, N, C, H, W, eps):
    if N * H * W < 2:
        N = 2  # train mode needs two values per channel
    x, gamma, beta, dout = data(seed, (N, C, H, W), C)
    out, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    tout, *grads = torch_grads(
        lambda a, g, b: F.batch_norm(a, None, None, g, b, training=True, eps=eps),
        x, gamma, beta, dout)
    close(out, tout)
    for got, want in zip(spatial_batchnorm_backward(dout, cache), grads, strict=True):
        close(got, want)


@given(seed=seeds, N=st.integers(1, 8), D=st.integers(2, 8), eps=EPS)
def test_layernorm_matches_torch(seed, N, D, eps):
    x, gamma, beta, dout = data(seed, (N, D), D)
    out, cache = layernorm_forward(x, gamma, beta, {"eps": eps})
    tout, *grads = torch_grads(lambda a, g, b: F.layer_norm(a, (D,), g, b, eps=eps),
                               x, gamma, beta, dout)
    close(out, tout)
    for got, want in zip(layernorm_backward(dout, cache), grads, strict=True):
        close(got, want)


@given(seed=seeds, N=st.integers(1, 3), G=st.integers(1, 3), per_group=st.integers(1, 3),
       H=st.integers(1, 3), W=st.integers(1, 3), eps=EPS)
def test_groupnorm_matches_torch(seed, N, G, per_group, H, W, eps):
    if per_group * H * W < 2:
        H = 2  # a group of one value has no variance
    C = G * per_group
    x, gamma, beta, dout = data(seed, (N, C, H, W), C)
    out, cache = groupnorm_forward(x, gamma, beta, G, {"eps": eps})
    tout, *grads = torch_grads(lambda a, g, b: F.group_norm(a, G, g, b, eps=eps),
                               x, gamma, beta, dout)
    close(out, tout)
    for got, want in zip(groupnorm_backward(dout, cache), grads, strict=True):
        close(got, want)


@given(seed=seeds, N=st.integers(1, 8), D=st.integers(1, 8), eps=EPS)
def test_rmsnorm_matches_torch(seed, N, D, eps):
    x, gamma, beta, dout = data(seed, (N, D), D)
    out, cache = rmsnorm_forward(x, gamma, {"eps": eps})
    tout, dx, dgamma, _ = torch_grads(lambda a, g, b: F.rms_norm(a, (D,), g, eps=eps),
                                      x, gamma, beta, dout)
    close(out, tout)
    for got, want in zip(rmsnorm_backward(dout, cache), (dx, dgamma), strict=True):
        close(got, want)


def torch_batch_renorm(x, gamma, beta, rm, rv, eps, r_max, d_max):
    """Ioffe (2017), Algorithm 1, in torch ops: r and d are computed from the batch, clipped,
    and detached (stop_gradient), so autograd treats them as constants, as the paper says."""
    mu, var = x.mean(0), x.var(0, unbiased=False)  # (D,), (D,)
    std_b, std_r = torch.sqrt(var + eps), torch.sqrt(torch.tensor(rv) + eps)  # (D,), (D,)
    r = torch.clamp(std_b / std_r, 1 / r_max, r_max).detach()  # (D,)
    d = torch.clamp((mu - torch.tensor(rm)) / std_r, -d_max, d_max).detach()  # (D,)
    return gamma * ((x - mu) / std_b * r + d) + beta  # (N, D)


@given(seed=seeds, N=st.integers(2, 10), D=st.integers(1, 6), eps=EPS, momentum=MOMENTUM,
       limits=st.sampled_from([(3.0, 5.0), (1.5, 0.5), (1.0, 0.0), (1e6, 1e6)]))
def test_batch_renorm_matches_the_paper_in_torch(seed, N, D, eps, momentum, limits):
    x, gamma, beta, dout = data(seed, (N, D), D)
    rng = np.random.default_rng(seed + 1)
    # Running statistics off from the batch's by a varied amount: r and d clip in some features
    # and not in others (limits (1e6, 1e6): never; (1, 0): always, which is plain BN).
    rm, rv = rng.normal(0, 3, D), rng.uniform(0.05, 20, D)  # (D,), (D,)
    r_max, d_max = limits
    bn_param = {"mode": "train", "eps": eps, "momentum": momentum, "r_max": r_max,
                "d_max": d_max, "running_mean": rm.copy(), "running_var": rv.copy()}
    out, cache = batch_renorm_forward(x, gamma, beta, bn_param)
    tout, *grads = torch_grads(
        lambda a, g, b: torch_batch_renorm(a, g, b, rm, rv, eps, r_max, d_max),
        x, gamma, beta, dout)
    close(out, tout)
    for got, want in zip(batch_renorm_backward(dout, cache), grads, strict=True):
        close(got, want)
    # The buffers move exactly as BN's do (the course's convention, biased variance).
    close(bn_param["running_mean"], momentum * rm + (1 - momentum) * x.mean(0))
    close(bn_param["running_var"], momentum * rv + (1 - momentum) * x.var(0))
