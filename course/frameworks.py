"""What the notebooks need to set the course beside the frameworks: PyTorch when it is installed,
and TensorFlow's channels-last moments written in numpy."""

import importlib
import os

import numpy as np

from course.claims import Claim

# `make test` sets this: there PyTorch is installed on purpose, so a cell that would skip the
# framework comparison is a broken install, not a student without PyTorch.
REQUIRE = "COURSE_REQUIRE_TORCH"


def optional_torch():
    """The torch module, or None after saying in one line that the PyTorch cells are skipped."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        if os.environ.get(REQUIRE):
            raise ImportError(f"PyTorch is required here ({REQUIRE} is set), but it does not "
                              "import: run `make test`, which installs it") from None
        print("PyTorch is not installed: the PyTorch comparisons are skipped (nothing else needs "
              "it).")
        return None


def nhwc_moments(x):
    """Per-channel mean and biased variance of channels-last maps (N, H, W, C), as TensorFlow's
    tf.nn.moments(x, axes=[0, 1, 2]) computes them for its batch norm."""
    return x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))  # (C,), (C,)


# ----------------------------------------------------------------------------------------------
# Notebook 04's side-by-side runs: the course's numbers against PyTorch's, in float64. Each
# returns its measured differences; claims(result) turns them into the sentences it prints.


def _as64(torch, a):
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def running_buffers(torch, xs, update, momentum=0.9):
    """Feed the batches xs (each (N, D)) through a PyTorch BatchNorm1d in train mode with the
    course's momentum converted, through `update` (PyTorch's rule in numpy) and through the
    course's own rule; return the three sets of buffers."""
    from course import running_stats as rs

    D, N = xs[0].shape[1], xs[0].shape[0]
    layer = torch.nn.BatchNorm1d(D, momentum=rs.to_pytorch_momentum(momentum),
                                 dtype=torch.float64)
    rm, rv = np.zeros(D), np.ones(D)  # (D,), (D,)
    for x in xs:
        layer.train()(_as64(torch, x))
        rm, rv = update(rm, rv, x, layer.momentum)
    course_mean, course_var = rs.simulate(rs.COURSE, xs, momentum)
    return {"experiment": "running_buffers", "torch_momentum": layer.momentum, "N": N,
            "steps": len(xs), "momentum": momentum, "layer": layer,
            "torch": (layer.running_mean.numpy().copy(), layer.running_var.numpy().copy()),
            "update": (rm, rv), "course": (course_mean, course_var)}


def eval_and_autograd(torch, buffers, forward, x_new, x, seed=0):
    """eval() of the layer of running_buffers against the course's test mode (`forward`) fed
    PyTorch's buffers; and PyTorch's autograd against the course's closed-form backward pass
    on x (N, D) with random gamma, beta and upstream gradient."""
    from course.batchnorm import batchnorm_backward_alt, batchnorm_forward

    t_mean, t_var = buffers["torch"]
    D = x.shape[1]
    ours, _ = forward(x_new, np.ones(D), np.zeros(D), {
        "mode": "test", "running_mean": t_mean.copy(), "running_var": t_var.copy()})
    theirs = buffers["layer"].eval()(_as64(torch, x_new)).detach().numpy()
    rng = np.random.default_rng(seed)
    dout = rng.normal(size=x.shape)  # (N, D)
    gamma, beta = rng.normal(1.0, 0.5, D), rng.normal(size=D)  # (D,), (D,)
    bn = torch.nn.BatchNorm1d(D, dtype=torch.float64).train()
    with torch.no_grad():
        bn.weight.copy_(_as64(torch, gamma))
        bn.bias.copy_(_as64(torch, beta))
    xt = _as64(torch, x).requires_grad_()
    out_t = bn(xt)
    out_t.backward(_as64(torch, dout))
    out_c, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx, dgamma, dbeta = batchnorm_backward_alt(dout, cache)
    errors = {name: float(np.abs(a - b.detach().numpy()).max()) for name, a, b in [
        ("out", out_c, out_t), ("dx", dx, xt.grad), ("dgamma", dgamma, bn.weight.grad),
        ("dbeta", dbeta, bn.bias.grad)]}
    return {"experiment": "eval_and_autograd", "eval_error": float(np.abs(ours - theirs).max()),
            "errors": errors}


def settings_without_a_switch(torch, xs):
    """PyTorch's momentum=None, track_running_stats=False and F.batch_norm on the batches xs,
    each against what the course computes for it."""
    from course import running_stats as rs
    from course.batchnorm import batchnorm_forward

    D, N = xs[0].shape[1], xs[0].shape[0]
    cumulative = torch.nn.BatchNorm1d(D, momentum=None, dtype=torch.float64).train()
    for x in xs:
        cumulative(_as64(torch, x))
    means = np.stack([x.mean(axis=0) for x in xs])  # (K, D) batch means
    variances = np.stack([x.var(axis=0) for x in xs])  # (K, D) biased batch variances
    pop_mean, pop_var = rs.population_estimate(means, variances, batch_size=N)
    stateless = torch.nn.BatchNorm1d(D, track_running_stats=False, dtype=torch.float64).eval()
    x = xs[0]
    own_stats, _ = batchnorm_forward(x, np.ones(D), np.zeros(D), {"mode": "train"})
    buf_mean, buf_var = torch.zeros(D, dtype=torch.float64), torch.ones(D, dtype=torch.float64)
    out_f = torch.nn.functional.batch_norm(_as64(torch, x), buf_mean, buf_var, training=True,
                                           momentum=0.1, eps=1e-5).numpy()
    want_mean, want_var = rs.pytorch_running_update(np.zeros(D), np.ones(D), x, 0.1)
    return {"experiment": "settings", "batches": int(cumulative.num_batches_tracked),
            "cumulative_error": float(max(np.abs(cumulative.running_mean.numpy() - pop_mean).max(),
                                          np.abs(cumulative.running_var.numpy() - pop_var).max())),
            "stateless_buffers": stateless.running_mean,
            "stateless_error": float(np.abs(stateless(_as64(torch, x)).detach().numpy()
                                            - own_stats).max()),
            "functional_error": float(np.abs(out_f - own_stats).max()),
            "functional_buffer_error": float(max(np.abs(buf_mean.numpy() - want_mean).max(),
                                                 np.abs(buf_var.numpy() - want_var).max()))}


def feature_maps(torch, maps):
    """Per-channel statistics of feature maps (N, C, H, W): TensorFlow's channels-last moments
    and (when torch is given) PyTorch's BatchNorm2d against the course's spatial BN."""
    from course.norms import spatial_batchnorm_forward

    C = maps.shape[1]
    out, (cache, _) = spatial_batchnorm_forward(maps, np.ones(C), np.zeros(C), {"mode": "train"})
    tf_mean, tf_var = nhwc_moments(maps.transpose(0, 2, 3, 1))  # (C,), (C,)
    result = {"experiment": "feature_maps", "n": maps.size // C,
              "nhwc_error": float(max(np.abs(tf_mean - cache["mu"]).max(),
                                      np.abs(tf_var - cache["var"]).max()))}
    if torch is not None:
        bn2d = torch.nn.BatchNorm2d(C, momentum=0.1, dtype=torch.float64).train()
        out_2d = bn2d(_as64(torch, maps)).detach().numpy()  # (N, C, H, W)
        n = result["n"]
        result["bn2d_error"] = float(np.abs(out_2d - out).max())
        result["bn2d_var_error"] = float(np.abs(bn2d.running_var.numpy()
                                                - (0.9 + 0.1 * tf_var * n / (n - 1))).max())
    return result


TOL = 1e-10  # float64 against float64: agreement to rounding


def _buffer_claims(r):
    (t_mean, t_var), (u_mean, u_var), (c_mean, c_var) = r["torch"], r["update"], r["course"]
    init = r["momentum"] ** r["steps"]  # what the initial running_var of 1 still contributes
    ratio = (t_var - init) / (c_var - init)  # (D,)
    N = r["N"]
    return [
        Claim(f"PyTorch's momentum {r['torch_momentum']:.1f} is the course's {r['momentum']:g}",
              abs(r["torch_momentum"] - (1 - r["momentum"])) < 1e-12),
        Claim("PyTorch's running_mean and running_var equal the numpy update passed in",
              np.allclose(u_mean, t_mean, rtol=0, atol=TOL)
              and np.allclose(u_var, t_var, rtol=0, atol=TOL),
              {"largest difference": max(np.abs(u_mean - t_mean).max(),
                                         np.abs(u_var - t_var).max())}),
        Claim("PyTorch's running_mean equals the course's",
              np.allclose(t_mean, c_mean, rtol=0, atol=TOL),
              {"largest difference": np.abs(t_mean - c_mean).max()}),
        Claim(f"on the averaged part, PyTorch's running_var is N/(N-1) = {N / (N - 1):.6f} "
              "times the course's", np.allclose(ratio, N / (N - 1), rtol=1e-9),
              {"ratios": np.round(ratio, 6).tolist()}, f"{r['steps']} batches of N = {N}"),
    ]


def _eval_claims(r):
    return [
        Claim("eval() equals the course's test mode fed PyTorch's buffers", r["eval_error"] < TOL,
              {"largest difference": r["eval_error"]}),
        Claim("autograd equals the course's forward and closed-form backward pass "
              "(random gamma, beta, upstream gradient)", max(r["errors"].values()) < 1e-12,
              {k: v for k, v in r["errors"].items()}),
    ]


def _settings_claims(r):
    return [
        Claim(f"momentum=None after {r['batches']} batches is the paper's population estimate "
              "(rs.population_estimate)", r["cumulative_error"] < TOL,
              {"largest difference": r["cumulative_error"]}),
        Claim("track_running_stats=False keeps no buffers, and eval() normalises with the "
              "batch's own statistics", r["stateless_buffers"] is None
              and r["stateless_error"] < TOL, {"largest difference": r["stateless_error"]}),
        Claim("F.batch_norm(training=True) normalises like train mode and updates the buffers "
              "passed in, in place, by PyTorch's rule",
              r["functional_error"] < TOL and r["functional_buffer_error"] < TOL,
              {"output": r["functional_error"], "buffers": r["functional_buffer_error"]}),
    ]


def _maps_claims(r):
    out = [Claim("TensorFlow's NHWC moments equal the course's per-channel batch statistics",
                 r["nhwc_error"] < TOL, {"largest difference": r["nhwc_error"]})]
    if "bn2d_error" in r:
        out += [Claim("BatchNorm2d's output equals spatial_batchnorm_forward",
                      r["bn2d_error"] < TOL, {"largest difference": r["bn2d_error"]}),
                Claim(f"BatchNorm2d's running_var takes the unbiased variance over N*H*W = "
                      f"{r['n']} values", r["bn2d_var_error"] < TOL,
                      {"largest difference": r["bn2d_var_error"]})]
    return out


def claims(result):
    """The sentences notebook 04 prints for one side-by-side run, each with its difference."""
    return {"running_buffers": _buffer_claims, "eval_and_autograd": _eval_claims,
            "settings": _settings_claims, "feature_maps": _maps_claims}[result["experiment"]](
        result)
