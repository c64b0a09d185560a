"""Graded exercises of notebook 06: folding BN for inference, synchronised BN across devices."""

import numpy as np

from course.batchnorm import DEFAULT_EPS, DEFAULT_MOMENTUM, batchnorm_backward_alt
from course.folding import fold_batchnorm
from course.sync_bn import (
    per_shard_batchnorm_forward,
    sync_batchnorm_backward,
    sync_batchnorm_forward,
)
from course.tasks.base import Case, Mistake, Task
from course.tasks.diagnose import (
    Alternatives,
    Gradient,
    Normalised,
    Running,
    bn_terms,
    dgamma_view,
    eps_of,
    term_names,
)

NOTEBOOK = "06_in_practice"

# ---------------------------------------------------------------------------------------------
# fold_batchnorm


def _fold_with(scale_fn, bias_fn, rows=False):
    """A folding variant built from a scale rule and a bias rule (for the known mistakes)."""
    def fold(w, b, gamma, beta, running_mean, running_var, eps=DEFAULT_EPS):
        s = scale_fn(gamma, running_var, eps)  # (M,)
        w_new = w * s[:, None] if rows else w * s  # (D, M)
        return w_new, bias_fn(b, s, beta, running_mean)
    return fold


def _right_bias(b, s, beta, mean):
    return (b - mean) * s + beta


_FOLD_MISTAKES = (
    Mistake("eps_dropped", "ε was left out: divide gamma by sqrt(running_var + eps), exactly as "
                           "test-mode BN does, or the folded layer differs for small variances.",
            (_fold_with(lambda g, v, e: g / np.sqrt(v), _right_bias),)),
    Mistake("eps_outside_root", "ε was added outside the square root (sqrt(var) + eps); BN uses "
                                "sqrt(running_var + eps).",
            (_fold_with(lambda g, v, e: g / (np.sqrt(v) + e), _right_bias),)),
    Mistake("variance_not_std", "divided by the variance instead of the standard deviation: the "
                                "scale is gamma / sqrt(running_var + eps).",
            (_fold_with(lambda g, v, e: g / (v + e), _right_bias),)),
    Mistake("mean_not_folded", "the running mean was not folded into the bias: the new bias is "
                               "(b - running_mean) * scale + beta.",
            (_fold_with(lambda g, v, e: g / np.sqrt(v + e), lambda b, s, bt, m: b * s + bt),)),
    Mistake("bias_not_scaled", "the old bias b was not scaled: BN scales its whole input x @ w + b,"
                               " so the new bias is (b - running_mean) * scale + beta.",
            (_fold_with(lambda g, v, e: g / np.sqrt(v + e), lambda b, s, bt, m: b - m * s + bt),)),
    Mistake("beta_scaled", "beta was multiplied by the scale too: BN adds beta after scaling, so "
                           "the new bias is (b - running_mean) * scale + beta.",
            (_fold_with(lambda g, v, e: g / np.sqrt(v + e),
                        lambda b, s, bt, m: (b - m + bt) * s),)),
    Mistake("rows_scaled", "scaled the rows of w instead of its columns: output feature m comes "
                           "from column m of w (z = x @ w + b), so multiply w by scale along "
                           "axis 1 (w * scale).",
            (_fold_with(lambda g, v, e: g / np.sqrt(v + e), _right_bias, rows=True),)),
)


def _fold_cases(rng):
    def case(label, D, eps, var_low):
        return Case(label, {"w": rng.normal(size=(D, D)), "b": rng.normal(size=D),
                            "gamma": rng.normal(1.0, 0.5, D), "beta": rng.normal(size=D),
                            "running_mean": rng.normal(0.0, 2.0, D),
                            "running_var": rng.uniform(var_low, 2.0, D), "eps": eps})
    # Square layers so that a row/column mix-up still runs and can be named; small variances so
    # that every placement of eps gives a visibly different answer.
    return [case("layer 4 -> 4, eps 1e-5, running variances from 1e-4", 4, 1e-5, 1e-4),
            case("layer 7 -> 7, eps 1e-3, running variances from 1e-3", 7, 1e-3, 1e-3),
            case("layer 5 -> 5, eps 1e-5, running variances from 0.01", 5, 1e-5, 0.01)]


def _fold_run(fns, inputs):
    (fold,) = fns
    w, b = fold(**inputs)
    return {"w_folded": w, "b_folded": b}


def _fold_symbols(inputs):
    """γ, β and σ = sqrt(running_var + eps), each (M,)."""
    return {"γ": inputs["gamma"], "β": inputs["beta"],
            "σ": np.sqrt(inputs["running_var"] + inputs["eps"])}


def _fold_bias_forms(inputs):
    """Other folded biases: each piece of (b − running_mean) · scale + beta left out or moved."""
    s = inputs["gamma"] / np.sqrt(inputs["running_var"] + inputs["eps"])  # (M,)
    b, m, beta = inputs["b"], inputs["running_mean"], inputs["beta"]
    return {"mean_unscaled": (b * s - m + beta, "the running mean was subtracted after scaling: "
                                                "it is scaled with b, (b - running_mean) * "
                                                "scale + beta"),
            "b_dropped": (-m * s + beta, "the old bias b is missing: (b - running_mean) * "
                                         "scale + beta")}


FOLD_TASK = Task(
    notebook=NOTEBOOK, points=2,
    checks="folded weights and bias of random layers with random γ, β and running statistics",
    reference=(fold_batchnorm,), make_cases=_fold_cases, run=_fold_run, mistakes=_FOLD_MISTAKES,
    may_use=(),
    symbols=_fold_symbols, views={"b_folded": Alternatives(_fold_bias_forms)})

# ---------------------------------------------------------------------------------------------
# sync_batchnorm_forward


def _global_stats_variant(combine):
    """A synchronised-BN forward whose global mean/variance come from `combine` (for mistakes)."""
    def forward(shards, gamma, beta, bn_param):
        eps = bn_param.get("eps", DEFAULT_EPS)
        m = bn_param.get("momentum", DEFAULT_MOMENTUM)
        D = shards[0].shape[1]
        mean, var = combine(shards)  # (D,), (D,)
        inv_std = 1.0 / np.sqrt(var + eps)
        x_hats = [(s - mean) * inv_std for s in shards]
        bn_param["running_mean"] = m * bn_param.get("running_mean", np.zeros(D)) + (1 - m) * mean
        bn_param["running_var"] = m * bn_param.get("running_var", np.ones(D)) + (1 - m) * var
        cache = {"x_hat": x_hats, "inv_std": inv_std, "gamma": gamma,
                 "count": sum(len(s) for s in shards)}
        return [gamma * xh + beta for xh in x_hats], cache
    return forward


def _avg_variances(shards):
    n = np.array([len(s) for s in shards])[:, None]  # (K, 1)
    means = np.stack([s.mean(axis=0) for s in shards])  # (K, D)
    variances = np.stack([s.var(axis=0) for s in shards])  # (K, D)
    return (n * means).sum(0) / n.sum(), (n * variances).sum(0) / n.sum()


def _equal_weights(shards):
    means = np.stack([s.mean(axis=0) for s in shards])  # (K, D)
    variances = np.stack([s.var(axis=0) for s in shards])  # (K, D)
    mean = means.mean(axis=0)  # every shard counted once, whatever its size
    return mean, (variances + (means - mean) ** 2).mean(axis=0)


def _concatenated(shards):
    x = np.concatenate(shards)
    return x.mean(axis=0), x.var(axis=0)


def _unbiased(shards):
    x = np.concatenate(shards)
    return x.mean(axis=0), x.var(axis=0, ddof=1)


def _no_running_update(shards, gamma, beta, bn_param):
    saved = {k: bn_param[k] for k in ("running_mean", "running_var") if k in bn_param}
    # The right outputs from the Chan merge (_concatenated), not from the reference, which the
    # grading copy of notebook 06 does not have.
    outs, cache = _global_stats_variant(_concatenated)(shards, gamma, beta, bn_param)
    D = shards[0].shape[1]
    bn_param["running_mean"] = saved.get("running_mean", np.zeros(D))
    bn_param["running_var"] = saved.get("running_var", np.ones(D))
    return outs, cache


def _per_device_forward(shards, gamma, beta, bn_param):
    return per_shard_batchnorm_forward(shards, gamma, beta, bn_param)


_FORWARD_MISTAKES = (
    Mistake("averaged_variances", "averaged the per-shard variances: that misses the spread of the "
                                  "shard means around the global mean. Combine (count, mean, M2) "
                                  "with Chan's formula, or all-reduce Σx and Σx².",
            (_global_stats_variant(_avg_variances),)),
    Mistake("unweighted_shards", "gave every shard the same weight although the shards have "
                                 "different sizes: weight each shard's mean (and M2) by its "
                                 "count, or simply all-reduce the sums.",
            (_global_stats_variant(_equal_weights),)),
    Mistake("per_device", "normalised each shard with its own statistics (per-device BN): "
                          "synchronised BN uses the statistics of the whole batch on every "
                          "device.", (_per_device_forward,)),
    Mistake("unbiased_variance", "divided by N - 1: BN normalises with the biased variance, "
                                 "M2 / N over the whole batch.",
            (_global_stats_variant(_unbiased),)),
    Mistake("running_not_updated", "the output is right but bn_param's running_mean / running_var "
                                   "were not updated with the global mean and variance.",
            (_no_running_update,)),
)


def _shards(rng, sizes, D, spread):
    """Uneven shards whose devices see differently centred data (spread = sd of shard offsets).

    Kept as {"device k": array} in the case inputs so that the generic in-place-change detection
    (which compares dicts of arrays) sees every shard; `run` turns them back into a list.
    """
    offsets = rng.normal(0.0, spread, (len(sizes), D))  # (K, D)
    return {f"device {k}": rng.normal(1.0, 2.0, (n, D)) + off
            for k, (n, off) in enumerate(zip(sizes, offsets, strict=True))}


def _as_list(per_device):
    """The arrays of a {"device k": array} dict, in device order (the same objects, not copies)."""
    return [per_device[f"device {k}"] for k in range(len(per_device))]


def _forward_cases(rng):
    def case(label, sizes, D, spread, param, far=0.0):
        # far: every feature that far from zero, where all-reduced Σx and Σx² (E[x²] − E[x]²)
        # lose digits the tolerance of 1e-9 sees; Chan's merge of (count, mean, M2) does not.
        shards = {k: v + far for k, v in _shards(rng, sizes, D, spread).items()}
        return Case(label, {"shards": shards,
                            "gamma": rng.normal(1.0, 0.5, D), "beta": rng.normal(size=D),
                            "bn_param": param})
    return [case("3 uneven shards (2, 7, 4) x 3 features", (2, 7, 4), 3, 1.0, {"mode": "train"}),
            case("4 uneven shards (5, 2, 9, 3), shard means far apart", (5, 2, 9, 3), 4, 3.0,
                 {"mode": "train", "momentum": 0.8, "running_mean": rng.normal(size=4),
                  "running_var": rng.uniform(0.5, 2.0, 4)}),
            case("2 uneven shards (3, 12) x 5 features near 1e4, eps 1e-3", (3, 12), 5, 0.5,
                 {"mode": "train", "eps": 1e-3}, far=1e4)]


def _forward_run(fns, inputs):
    (forward,) = fns
    outs, _ = forward(_as_list(inputs["shards"]), inputs["gamma"], inputs["beta"],
                      inputs["bn_param"])
    p = inputs["bn_param"]
    # One output per device, each compared on its own: outputs split at other places than the
    # shards are wrong even when their concatenation is right.
    return {"out": outs, "running_mean": p["running_mean"],
            "running_var": p["running_var"]}


def _sync_symbols(inputs):
    """N, γ, β and σ of the whole (concatenated) batch."""
    x = np.concatenate(_as_list(inputs["shards"]))  # (N, D)
    eps = eps_of("bn_param")(inputs)
    return {"N": x.shape[0], "K": len(inputs["shards"]), "γ": inputs["gamma"],
            "β": inputs["beta"], "σ": np.sqrt(x.var(axis=0) + eps)}


def _sync_buffer(stat):
    default = np.zeros if stat == "mean" else np.ones
    return Running(
        start=lambda inputs: inputs["bn_param"].get(
            f"running_{stat}", default(inputs["shards"]["device 0"].shape[1])),
        batches=lambda inputs: [np.concatenate(_as_list(inputs["shards"]))],
        keep=lambda inputs: inputs["bn_param"].get("momentum", DEFAULT_MOMENTUM), stat=stat)


_SYNC_VIEW = Normalised(
    source=lambda inputs: (np.concatenate(_as_list(inputs["shards"])), inputs["gamma"],
                           inputs["beta"]),
    eps=eps_of("bn_param"),
    over="per feature over the whole batch, all devices together")

FORWARD_TASK = Task(
    notebook=NOTEBOOK, points=3,
    checks="outputs and running statistics of synchronised BN on uneven shards (must equal BN "
           "of the concatenated batch)",
    reference=(sync_batchnorm_forward,), make_cases=_forward_cases, run=_forward_run,
    may_use=(),
    mistakes=_FORWARD_MISTAKES, mutable=("bn_param",), rtol=1e-9, atol=1e-11,
    symbols=_sync_symbols, views={"out": _SYNC_VIEW, "running_mean": _sync_buffer("mean"),
                                  "running_var": _sync_buffer("var")})

# ---------------------------------------------------------------------------------------------
# sync_batchnorm_backward


def _local_backward(use_global_sums, use_global_count):
    """A backward with some all-reduces missing (for the known mistakes)."""
    def backward(douts, cache):
        x_hats, inv_std, gamma, N = (cache["x_hat"], cache["inv_std"], cache["gamma"],
                                     cache["count"])
        sums = [(d.sum(0), (d * xh).sum(0)) for d, xh in zip(douts, x_hats, strict=True)]
        dbeta, dgamma = sum(s[0] for s in sums), sum(s[1] for s in sums)
        dxs = []
        for d, xh, (s1, s2) in zip(douts, x_hats, sums, strict=True):
            n = N if use_global_count else len(d)
            a, c = (dbeta, dgamma) if use_global_sums else (s1, s2)
            dxs.append((gamma * inv_std / n) * (n * d - a - xh * c))
        return dxs, dgamma, dbeta
    return backward


def _stats_as_constants(douts, cache):
    dbeta = sum(d.sum(axis=0) for d in douts)  # (D,) the right global sums
    dgamma = sum((d * xh).sum(axis=0) for d, xh in zip(douts, cache["x_hat"], strict=True))
    return [d * cache["gamma"] * cache["inv_std"] for d in douts], dgamma, dbeta


def _per_device_backward(douts, cache):
    # What per-device BN would backpropagate: each shard's own statistics, recomputed here.
    x_hats, gamma = cache["x_hat"], cache["gamma"]
    dxs, dgamma, dbeta = [], 0, 0
    for d, xh in zip(douts, x_hats, strict=True):
        x = xh / cache["inv_std"]  # any shift of x leaves per-shard BN unchanged
        mu, var = x.mean(0), x.var(0)
        inv = 1 / np.sqrt(var + DEFAULT_EPS)
        local = {"x_hat": (x - mu) * inv, "gamma": gamma, "inv_std": inv}
        dx, _, _ = batchnorm_backward_alt(d, local)
        dxs.append(dx)
        dgamma, dbeta = dgamma + (d * xh).sum(0), dbeta + d.sum(0)
    return dxs, dgamma, dbeta


_BACKWARD_MISTAKES = (
    Mistake("no_all_reduce", "each device used only its own Σdout and Σdout·x̂ and its own count "
                             "(no all-reduce in backward): the global mean and variance depend "
                             "on every shard, so sum both over all devices and use the global N.",
            (_local_backward(False, False),)),
    Mistake("local_count", "divided by the shard size N_k: the statistics were computed over all "
                           "N examples, so the gradient uses the global count cache['count'].",
            (_local_backward(True, False),)),
    Mistake("local_sums", "used the global count but each device's own Σdout and Σdout·x̂: "
                          "all-reduce (sum over shards) both before computing dx.",
            (_local_backward(False, True),)),
    Mistake("stats_as_constants", "treated the mean and variance as constants (dx = dout * gamma "
                                  "/ std): they depend on x, which adds the -Σdout and "
                                  "-x̂·Σ(dout·x̂) terms.", (_stats_as_constants,)),
    Mistake("per_device_backward", "backpropagated per-device BN (each shard's own statistics) "
                                   "instead of the synchronised one.", (_per_device_backward,)),
)


def _backward_cases(rng):
    def case(label, sizes, D, spread):
        shards = _shards(rng, sizes, D, spread)
        gamma, beta = rng.normal(1.0, 0.5, D), rng.normal(size=D)
        douts = {k: rng.normal(size=s.shape) for k, s in shards.items()}
        # The reference forward's cache is made here, with the inputs, so a grader sends it
        # as data (the grading copy of `course` has no sync_batchnorm_forward).
        _, cache = sync_batchnorm_forward(_as_list(shards), gamma, beta, {"mode": "train"})
        return Case(label, {"shards": shards, "gamma": gamma, "beta": beta, "douts": douts,
                            "cache": cache})
    return [case("3 uneven shards (2, 7, 4) x 3 features, random dout", (2, 7, 4), 3, 1.0),
            case("4 uneven shards (5, 2, 9, 3), shard means far apart", (5, 2, 9, 3), 4, 3.0),
            case("2 uneven shards (3, 12) x 5 features", (3, 12), 5, 0.5)]


def _backward_run(fns, inputs):
    (backward,) = fns
    dxs, dgamma, dbeta = backward(_as_list(inputs["douts"]), inputs["cache"])
    return {"dx": dxs, "dgamma": dgamma, "dbeta": dbeta}  # dx: one array per device


def _sync_terms(inputs):
    cache = inputs["cache"]
    g = np.concatenate(_as_list(inputs["douts"])) * inputs["gamma"]  # (N, D)
    return bn_terms(np.concatenate(cache["x_hat"]), g, cache["inv_std"])


_SYNC_GRADIENT = Gradient(
    terms=_sync_terms,
    names=term_names("Σdout all-reduced over every device, over the global N",
                     "Σ(dout·x̂) all-reduced over every device"),
    scale_hints={"1/γ": "γ is missing from the prefactor γ/(N·σ)",
                 "N": "the prefactor is γ/(N·σ) with the global N = cache['count']"})

BACKWARD_TASK = Task(
    notebook=NOTEBOOK, points=3,
    checks="dx, dgamma and dbeta of synchronised BN on uneven shards with random upstream "
           "gradients (must equal BN of the concatenated batch)",
    reference=(sync_batchnorm_backward,), make_cases=_backward_cases, run=_backward_run,
    may_use=(),
    mistakes=_BACKWARD_MISTAKES, mutable=("cache",), rtol=1e-9, atol=1e-11,
    symbols=_sync_symbols, views={"dx": _SYNC_GRADIENT, "dgamma": dgamma_view(
        lambda inputs: (np.concatenate(_as_list(inputs["douts"])),
                        np.concatenate(_as_list(inputs["shards"])),
                        np.concatenate(inputs["cache"]["x_hat"])),
        devices=lambda inputs: list(zip(_as_list(inputs["douts"]), inputs["cache"]["x_hat"],
                                        strict=True)))},
    cache_keys=("x_hat", "inv_std", "gamma", "count"))

TASKS = [FOLD_TASK, FORWARD_TASK, BACKWARD_TASK]
