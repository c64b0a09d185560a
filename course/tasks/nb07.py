"""Graded exercises of notebook 07: the BN network wired by hand, RMSNorm, Batch Renormalization."""

import numpy as np

from course.batch_renorm import D_MAX, R_MAX, batch_renorm_forward
from course.batchnorm import (
    DEFAULT_EPS,
    DEFAULT_MOMENTUM,
    batchnorm_backward,
    batchnorm_forward,
    ema_update,
)
from course.bn_net import bn_net_loss
from course.layers import affine_backward, affine_forward, relu_backward, relu_forward, softmax_loss
from course.rmsnorm import rmsnorm_backward, rmsnorm_forward
from course.tasks.base import Case, Mistake, Task, random_gamma_beta
from course.tasks.diagnose import (
    Gradient,
    Normalised,
    Overflow,
    Regularised,
    Renorm,
    Running,
    batchnorm_view,
    dgamma_view,
    eps_of,
)

NOTEBOOK = "07_why_bn_helps"

# ---------------------------------------------------------------------------------------------
# bn_net_loss


def _net_variant(reg_grad=1.0, reg_loss=True, reg_gamma=False, relu_first=False,
                 bn_backward=True, test_in_train_mode=False):
    """A version of the network's loss with one planted mistake (for the known mistakes)."""
    def loss_fn(X, params, bn_params, y=None, reg=0.0):
        L = len(bn_params)
        mode = "test" if y is None and not test_in_train_mode else "train"
        caches, h = [], X
        for i in range(1, L + 1):
            bn_params[i - 1]["mode"] = mode
            z, aff = affine_forward(h, params[f"W{i}"], params[f"b{i}"])
            if relu_first:
                z, act = relu_forward(z)
            zn, bn = batchnorm_forward(z, params[f"gamma{i}"], params[f"beta{i}"], bn_params[i - 1])
            if not relu_first:
                zn, act = relu_forward(zn)
            h = zn
            caches.append((aff, bn, act))
        scores, last = affine_forward(h, params[f"W{L + 1}"], params[f"b{L + 1}"])
        if y is None:
            return scores
        loss, dh = softmax_loss(scores, y)
        penalised = [f"W{i}" for i in range(1, L + 2)]
        penalised += [f"gamma{i}" for i in range(1, L + 1)] if reg_gamma else []
        if reg_loss:
            loss += 0.5 * reg * sum(np.sum(params[k] ** 2) for k in penalised)
        grads = {}
        dh, grads[f"W{L + 1}"], grads[f"b{L + 1}"] = affine_backward(dh, last)
        for i, (aff, bn, act) in reversed(list(enumerate(caches, start=1))):
            if not relu_first:
                dh = relu_backward(dh, act)
            if bn_backward:
                dh, grads[f"gamma{i}"], grads[f"beta{i}"] = batchnorm_backward(dh, bn)
            else:
                _, grads[f"gamma{i}"], grads[f"beta{i}"] = batchnorm_backward(dh, bn)
            if relu_first:
                dh = relu_backward(dh, act)
            dh, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(dh, aff)
        for k in penalised:
            grads[k] = grads[k] + reg_grad * reg * params[k]
        return loss, grads
    return (loss_fn,)


def _net_cases(rng):
    def case(label, sizes, N, reg, train=True, last_scale=1.0):
        params = {}
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False), start=1):
            params[f"W{i}"] = rng.normal(0.0, 1.0 / np.sqrt(a), (a, b))
            if i == len(sizes) - 1:
                params[f"W{i}"] *= last_scale  # large class scores: a naive exp overflows
            params[f"b{i}"] = rng.normal(0.0, 0.5, b)  # non-zero: its gradient must still be 0
            if i < len(sizes) - 1:
                params[f"gamma{i}"], params[f"beta{i}"] = random_gamma_beta(rng, b)
        bn_params = [{"running_mean": rng.normal(size=h), "running_var": rng.uniform(0.5, 2.0, h)}
                     for h in sizes[1:-1]]
        X = rng.normal(0.5, 2.0, (N, sizes[0]))
        y = rng.integers(0, sizes[-1], N) if train else None
        return Case(label, {"X": X, "params": params, "bn_params": bn_params, "y": y, "reg": reg})
    return [case("train mode, 2 hidden layers (5 -> 4 -> 3 -> 3), reg 0.1", (5, 4, 3, 3), 7, 0.1),
            case("train mode, 1 hidden layer (6 -> 5 -> 4), reg 0", (6, 5, 4), 5, 0.0),
            case("train mode, 3 hidden layers, reg 0.5", (4, 5, 4, 3, 2), 6, 0.5),
            case("test mode (y=None): scores from the running statistics", (5, 4, 3, 3), 7, 0.1,
                 train=False),
            case("train mode, class scores in the thousands (exp overflows unless shifted), "
                 "reg 0.01", (4, 5, 3), 6, 0.01, last_scale=3000.0)]


def _net_run(fns, inputs):
    (loss_fn,) = fns
    bn_params = inputs["bn_params"]
    if inputs["y"] is None:
        return {"scores": loss_fn(inputs["X"], inputs["params"], bn_params)}
    loss, grads = loss_fn(inputs["X"], inputs["params"], bn_params, inputs["y"], inputs["reg"])
    out = {"loss": loss, **{f"d{k}": grads[k] for k in inputs["params"] if k in grads}}
    for i, p in enumerate(bn_params, start=1):
        out[f"running_mean{i}"], out[f"running_var{i}"] = p["running_mean"], p["running_var"]
    return out


def _train_forward(inputs):
    """The affine outputs z_i (the inputs of each BN layer) and the class scores in train mode,
    as the reference computes them (for the views; never shown to the student)."""
    params, h, zs = inputs["params"], inputs["X"], []
    L = len(inputs["bn_params"])
    for i in range(1, L + 1):
        z, _ = affine_forward(h, params[f"W{i}"], params[f"b{i}"])
        zs.append(z)
        zn, _ = batchnorm_forward(z, params[f"gamma{i}"], params[f"beta{i}"], {"mode": "train"})
        h, _ = relu_forward(zn)
    scores, _ = affine_forward(h, params[f"W{L + 1}"], params[f"b{L + 1}"])
    return zs, scores


_OVERFLOW_SCORE = 700.0  # exp(710) overflows float64; a case with larger scores shows it


def _net_views():
    """Views of every output the network task compares (loss, gradients, running buffers)."""
    reg = Regularised(params=lambda inputs: (inputs["params"], inputs["reg"],
                                             inputs["X"].shape[0]),
                      penalised=lambda params: [k for k in params if k.startswith("W")])
    overflow = Overflow(
        applies=lambda inputs: inputs["y"] is not None and float(
            np.max(np.abs(_train_forward(inputs)[1]))) > _OVERFLOW_SCORE,
        text="the class scores reach the thousands, where np.exp overflows: subtract each "
             "row's largest score before exponentiating (softmax does not change)")
    views = {"loss": (reg, overflow)}
    for k in ("W", "b", "gamma", "beta"):
        for i in range(1, 6):
            views[f"d{k}{i}"] = (reg, overflow)
    for i in range(1, 5):
        for stat in ("mean", "var"):
            views[f"running_{stat}{i}"] = Running(
                start=lambda inputs, i=i, stat=stat: inputs["bn_params"][i - 1][f"running_{stat}"],
                batches=lambda inputs, i=i: ([_train_forward(inputs)[0][i - 1]]
                                             if inputs["y"] is not None else []),
                keep=lambda inputs, i=i: inputs["bn_params"][i - 1].get("momentum",
                                                                        DEFAULT_MOMENTUM),
                stat=stat)
    return views


NET_TASK = Task(
    notebook=NOTEBOOK, points=4,
    checks="loss, the gradient of every parameter and the running statistics in train mode "
           "(random networks with non-zero biases, random γ/β, reg 0 to 0.5), and test-mode scores",
    reference=(bn_net_loss,), make_cases=_net_cases, run=_net_run, mutable=("bn_params",),
    may_use=(affine_forward, affine_backward, relu_forward, relu_backward, softmax_loss,
             batchnorm_forward, batchnorm_backward, "course.batchnorm.batchnorm_backward_alt"),
    views=_net_views(), symbols=lambda inputs: {"N": inputs["X"].shape[0]},
    mistakes=(
        Mistake("reg_grad_missing", "the L2 term is in the loss but not in the gradients: "
                "d(0.5·reg·ΣW²)/dW = reg·W must be added to every dW", _net_variant(reg_grad=0.0)),
        Mistake("reg_grad_doubled", "the weight gradients carry 2·reg·W: the loss has "
                "0.5·reg·ΣW², whose derivative is reg·W", _net_variant(reg_grad=2.0)),
        Mistake("reg_loss_missing", "the gradients are right but the loss lacks the L2 term "
                "0.5·reg·ΣW² (over every weight matrix)", _net_variant(reg_loss=False)),
        Mistake("reg_on_gamma", "γ was penalised too: the L2 term covers the weight matrices "
                "W1 … W(L+1) only, not γ, β or the biases", _net_variant(reg_gamma=True)),
        Mistake("relu_before_bn", "the layers are in the order affine → ReLU → BN: this network "
                "is affine → BN → ReLU, so BN normalises the affine output before the ReLU",
                _net_variant(relu_first=True)),
        Mistake("bn_backward_skipped", "the gradient went around the BN layers (dz = d(BN out)): "
                "pass it through batchnorm_backward, which also returns dgamma and dbeta",
                _net_variant(bn_backward=False)),
        Mistake("test_in_train_mode", "without labels the network still normalised with batch "
                "statistics: y=None means test mode, so set every bn_param's mode to 'test'",
                _net_variant(test_in_train_mode=True)),
    ))

# ---------------------------------------------------------------------------------------------
# rmsnorm_forward, rmsnorm_backward


def _rms_variant(center=False, eps_outside=False, axis=1, root=True, through_rms=True):
    """An RMSNorm forward/backward pair with one planted mistake (for the known mistakes)."""
    def forward(x, gamma, rms_param):
        eps = rms_param.get("eps", DEFAULT_EPS)
        xc = x - x.mean(axis=axis, keepdims=True) if center else x
        ms = np.mean(xc**2, axis=axis, keepdims=True)
        scale = (np.sqrt(ms) + eps if eps_outside else np.sqrt(ms + eps)) if root else ms + eps
        x_hat = xc / scale
        return gamma * x_hat, {"x_hat": x_hat, "rms": scale, "gamma": gamma}

    def backward(dout, cache):
        # Written out, not rmsnorm_backward: a planted answer may not call the graded reference.
        x_hat, rms, g = cache["x_hat"], cache["rms"], dout * cache["gamma"]
        proj = np.mean(g * x_hat, axis=axis, keepdims=True) if through_rms else 0.0
        return (g - x_hat * proj) / rms, (dout * x_hat).sum(axis=0)
    return forward, backward


def _rms_cases(rng):
    def case(label, N, D, mean, eps, size=1.0):
        gamma, _ = random_gamma_beta(rng, D)
        return Case(label, {"x": rng.normal(mean, 2.0, (N, D)) * size, "gamma": gamma,
                            "dout": rng.normal(size=(N, D)), "rms_param": {"eps": eps}})
    return [case("batch (4, 5), features with mean 1", 4, 5, 1.0, 1e-5),
            case("batch (6, 3), features with mean 3, eps 0.1", 6, 3, 3.0, 0.1),
            case("batch (3, 8), zero-mean features of size 1e-3, where ε matters", 3, 8, 0.0,
                 1e-5, size=1e-3)]


def _rms_run(fns, inputs):
    forward, backward = fns
    out, cache = forward(inputs["x"], inputs["gamma"], inputs["rms_param"])
    dx, dgamma = backward(inputs["dout"], cache)
    return {"out": out, "dx": dx, "dgamma": dgamma}


def _transpose(a):
    return a.T  # (D, N): one column per example, the group RMSNorm's statistic runs over


def _rms_terms(inputs):
    """dx = (g − x̂·mean(g·x̂))/rms per example, g = dout·γ, as two named terms (rows layout)."""
    _, cache = rmsnorm_forward(inputs["x"], inputs["gamma"], inputs["rms_param"])
    x_hat, rms = cache["x_hat"], cache["rms"]  # (N, D), (N, 1)
    g = inputs["dout"] * inputs["gamma"]  # (N, D)
    proj = -x_hat * np.mean(g * x_hat, axis=1, keepdims=True) / rms  # (N, D)
    return {"direct": (g / rms).T, "proj": proj.T}, x_hat.T


_RMS_VIEWS = {
    "out": Normalised(source=lambda inputs: (inputs["x"], inputs["gamma"], 0.0),
                      eps=eps_of("rms_param"), rows=_transpose,
                      over="per example over its D features (axis=1, keepdims=True)",
                      across="over the batch (axis=0)", group="example", has_running=False,
                      centred=False),
    "dx": Gradient(terms=_rms_terms, rows=_transpose,
                   names={"direct": "the direct term dout·γ/rms",
                          "proj": "the term through the rms, −x̂·mean(dout·γ·x̂)/rms"},
                   hints={("proj", "N"): "proj = np.mean(dx_hat * x_hat, axis=1): a mean over "
                                         "the D features, not a sum"},
                   scale_hints={"1/γ": "γ is missing: dx_hat = dout * gamma"},
                   sums="over each example's D features, per example", group="example"),
    "dgamma": dgamma_view(lambda inputs: (
        inputs["dout"], inputs["x"],
        rmsnorm_forward(inputs["x"], inputs["gamma"], inputs["rms_param"])[1]["x_hat"])),
}


RMS_TASK = Task(
    notebook=NOTEBOOK, points=3,
    checks="forward and backward (random upstream gradient, random γ) on random (N, D) batches",
    reference=(rmsnorm_forward, rmsnorm_backward), make_cases=_rms_cases, run=_rms_run,
    may_use=(),
    # no β; a statistic runs over the D features of one example
    symbols=lambda inputs: {"γ": inputs["gamma"], "N": inputs["x"].shape[1], "count": "D"},
    views=_RMS_VIEWS,
    mistakes=(
        Mistake("mean_subtracted", "the mean was subtracted: that is layer norm (without β); "
                "RMSNorm divides x itself by sqrt(mean(x²) + eps)", _rms_variant(center=True)),
        Mistake("eps_outside", "ε was added outside the square root: use sqrt(mean(x²) + eps)",
                _rms_variant(eps_outside=True)),
        Mistake("batch_axis", "the mean square was taken over the batch (axis 0): RMSNorm "
                "normalises each example over its own features (axis 1, keepdims=True)",
                _rms_variant(axis=0)),
        Mistake("no_root", "x was divided by the mean square, not by its square root (the RMS)",
                _rms_variant(root=False)),
        Mistake("rms_constant", "dx treats the RMS as a constant (dx = dout·γ/rms): it depends on "
                "x too; subtract x̂ times the mean of (dout·γ·x̂) over the features first",
                _rms_variant(through_rms=False)),
    ))

# ---------------------------------------------------------------------------------------------
# batch_renorm_forward


def _brn_variant(clip=True, invert_r=False, d_sign=1.0, d_over_sigma=True, r_low_zero=False,
                 eps_in_sigma=True, ignore_mode=False, update=True, ddof=0):
    """A Batch Renormalization forward with one planted mistake (for the known mistakes)."""
    def forward(x, gamma, beta, bn_param):
        if bn_param.get("mode", "train") == "test" and not ignore_mode:
            return batchnorm_forward(x, gamma, beta, bn_param)
        eps = bn_param.get("eps", DEFAULT_EPS)
        r_max, d_max = bn_param.get("r_max", R_MAX), bn_param.get("d_max", D_MAX)
        mu, var = x.mean(axis=0), x.var(axis=0, ddof=ddof)
        rm, rv = bn_param["running_mean"], bn_param["running_var"]
        std_b = np.sqrt(var + eps)
        std_r = np.sqrt(rv + eps) if eps_in_sigma else np.sqrt(rv)
        r = std_r / std_b if invert_r else std_b / std_r
        d = d_sign * (mu - rm) / (std_r if d_over_sigma else 1.0)
        if clip:
            r, d = np.clip(r, 0.0 if r_low_zero else 1 / r_max, r_max), np.clip(d, -d_max, d_max)
        if update:
            m = bn_param.get("momentum", DEFAULT_MOMENTUM)
            bn_param["running_mean"] = ema_update(rm, mu, m)
            bn_param["running_var"] = ema_update(rv, var, m)
        return gamma * ((x - mu) / std_b * r + d) + beta, {}
    return (forward,)


def _brn_cases(rng):
    def case(label, N, D, var_ratio, shift, mode="train", r_max=R_MAX, d_max=D_MAX,
             eps=DEFAULT_EPS, momentum=DEFAULT_MOMENTUM):
        gamma, beta = random_gamma_beta(rng, D)
        x = rng.normal(0.0, 1.0, (N, D))
        mu, var = x.mean(axis=0), x.var(axis=0)
        # Running statistics placed relative to the batch's, so that clipping does (not) happen.
        bn_param = {"mode": mode, "r_max": r_max, "d_max": d_max, "momentum": momentum, "eps": eps,
                    "running_mean": mu - shift * np.sqrt(var) * rng.choice([-1.0, 1.0], D),
                    "running_var": var * var_ratio * rng.uniform(0.8, 1.25, D)}
        return Case(label, {"x": x, "gamma": gamma, "beta": beta, "bn_param": bn_param})
    return [case("batch (8, 4), running statistics near the batch's: no clipping", 8, 4, 1.5, 0.3),
            case("batch (10, 3), running variance 0.6x the batch's: r above 1, no clipping, eps "
                 "1e-3, momentum 0.8", 10, 3, 0.6, 0.5, eps=1e-3, momentum=0.8),
            case("batch (6, 5), running variance 25x the batch's, mean far off: r clipped at "
                 "1/r_max, d at d_max", 6, 5, 25.0, 30.0),
            case("batch (6, 3), running variance a 20th, mean far off: r and d clipped", 6, 3,
                 0.05, 8.0, r_max=2.0, d_max=1.0),
            case("test mode: running statistics only", 5, 4, 2.0, 1.0, mode="test")]


def _brn_run(fns, inputs):
    (forward,) = fns
    bn_param = inputs["bn_param"]
    out, _ = forward(inputs["x"], inputs["gamma"], inputs["beta"], bn_param)
    key = "out_test" if bn_param.get("mode") == "test" else "out"  # two views of one output
    return {key: out, "running_mean": bn_param["running_mean"],
            "running_var": bn_param["running_var"]}


def _brn_parts(inputs):
    p = inputs["bn_param"]
    return {"x": inputs["x"], "gamma": inputs["gamma"], "beta": inputs["beta"],
            "eps": p.get("eps", DEFAULT_EPS), "running_mean": p["running_mean"],
            "running_var": p["running_var"], "r_max": p.get("r_max", R_MAX),
            "d_max": p.get("d_max", D_MAX), "momentum": p.get("momentum", DEFAULT_MOMENTUM)}


def _brn_buffer(stat):
    return Running(start=lambda inputs: inputs["bn_param"][f"running_{stat}"],
                   batches=lambda inputs: ([inputs["x"]] if inputs["bn_param"].get("mode")
                                           != "test" else []),
                   keep=lambda inputs: inputs["bn_param"].get("momentum", DEFAULT_MOMENTUM),
                   stat=stat)


_BRN_VIEWS = {"out": Renorm(parts=_brn_parts),
              "out_test": batchnorm_view(stats="running", running=lambda inputs: (
                  inputs["bn_param"]["running_mean"], inputs["bn_param"]["running_var"])),
              "running_mean": _brn_buffer("mean"), "running_var": _brn_buffer("var")}


BRN_TASK = Task(
    notebook=NOTEBOOK, points=3,
    checks="train-mode output and running statistics with and without clipping of r and d, "
           "and test mode, on random (N, D) batches with random γ/β",
    reference=(batch_renorm_forward,), make_cases=_brn_cases, run=_brn_run, mutable=("bn_param",),
    may_use=(batchnorm_forward,),
    views=_BRN_VIEWS,
    mistakes=(
        Mistake("not_clipped", "r and d were not clipped: r = clip(σ_B/σ, 1/r_max, r_max) and "
                "d = clip((μ_B − μ)/σ, −d_max, d_max)", _brn_variant(clip=False)),
        Mistake("r_inverted", "r is upside down: r = σ_B/σ (batch over running), so that "
                "x̂·r = (x − μ_B)/σ", _brn_variant(invert_r=True)),
        Mistake("d_sign", "d has the wrong sign: d = (μ_B − μ)/σ, batch mean minus running mean",
                _brn_variant(d_sign=-1.0)),
        Mistake("d_not_scaled", "d was not divided by σ: d = (μ_B − μ)/σ with σ the running "
                "standard deviation", _brn_variant(d_over_sigma=False)),
        Mistake("r_clip_from_zero", "r was clipped to [0, r_max]: the lower limit is 1/r_max",
                _brn_variant(r_low_zero=True)),
        Mistake("sigma_without_eps", "σ = sqrt(running_var) without ε: use "
                "sqrt(running_var + eps), as everywhere in BN", _brn_variant(eps_in_sigma=False)),
        Mistake("test_mode_ignored", "in test mode the layer still used batch statistics: test "
                "mode is plain BN's test mode, with the running statistics",
                _brn_variant(ignore_mode=True)),
        Mistake("running_not_updated", "the running statistics were not updated: train mode "
                "moves them towards the batch's, as BN does", _brn_variant(update=False)),
        Mistake("ddof1", "the batch variance divides by N − 1 (ddof=1): Batch Renorm uses BN's "
                "biased variance (divide by N) in σ_B and in the running average",
                _brn_variant(ddof=1)),
    ))

TASKS = [NET_TASK, RMS_TASK, BRN_TASK]
