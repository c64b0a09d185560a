"""Running statistics: moving averages, the paper's population estimates, recalibration, and the
momentum/variance conventions of this course, PyTorch and Keras.

Test mode needs a mean and variance that do not depend on the other examples in the batch. They
are estimated during training, one batch at a time; this module holds every way of doing so.
"""

from dataclasses import dataclass

import numpy as np

from course.batchnorm import DEFAULT_EPS, DEFAULT_MOMENTUM, ema_update
from course.claims import Claim

# ----------------------------------------------------------------------------------------------
# Exponential moving averages (this course's convention: momentum = weight of the OLD value)


def ema_trajectory(values, momentum=DEFAULT_MOMENTUM, init=0.0):
    """The running value before any step and after each of the K steps: shape (K + 1, ...)."""
    running = np.asarray(init, dtype=float)
    out = [running]
    for v in values:
        running = ema_update(running, v, momentum)
        out.append(running)
    return np.array(out)  # (K + 1, ...)


def ema_weights(k, momentum=DEFAULT_MOMENTUM):
    """Weights of (init, v_1, ..., v_k) in the running value after k steps; they sum to 1."""
    j = np.arange(1, k + 1)
    return np.concatenate([[momentum**k], (1 - momentum) * momentum ** (k - j)])  # (k + 1,)


def ema_closed_form(values, momentum=DEFAULT_MOMENTUM, init=0.0):
    """The running value after all steps as one weighted sum: m^k init + the batch terms."""
    values = np.asarray(values, dtype=float)  # (k, ...)
    w = ema_weights(len(values), momentum)  # (k + 1,)
    stacked = np.concatenate([np.asarray(init, dtype=float)[None] * np.ones_like(values[:1]),
                              values])  # (k + 1, ...)
    return np.tensordot(w, stacked, axes=1)


def steps_to_forget(momentum, fraction=0.01):
    """Smallest k with momentum**k <= fraction: steps until the initial value weighs < fraction."""
    return int(np.ceil(np.log(fraction) / np.log(momentum)))


# ----------------------------------------------------------------------------------------------
# Population statistics the paper's way, from the statistics of many mini-batches


def batches(n, batch_size, seed=0):
    """Index arrays of the full mini-batches of a shuffled range(n) (last partial one dropped)."""
    order = np.random.default_rng(seed).permutation(n)  # (n,)
    return [order[s:s + batch_size] for s in range(0, n - batch_size + 1, batch_size)]


def population_estimate(means, variances, batch_size, unbiased=True):
    """The paper's estimate from (B, D) batch statistics: mean of the batch means, and m/(m-1)
    times the mean biased batch variance (just the mean with unbiased=False)."""
    var = variances.mean(axis=0)  # (D,)
    # A biased batch variance underestimates the variance by a factor (m - 1)/m on average.
    return means.mean(axis=0), unbiased_var(var, batch_size) if unbiased else var  # (D,), (D,)


def _bn_layers(model):
    """The model's batch-norm layers (anything with running_mean/running_var/momentum)."""
    return [bn for bn in getattr(model, "bn", []) if bn is not None]


def population_statistics(model, X, batch_size, seed=0, unbiased=True):
    """Per BN layer, the paper's (mean, variance) estimate of its input; the model is unchanged.

    The model normalises each mini-batch with its own statistics (so every layer sees inputs
    normalised the way they were during training); each layer reports the statistics of the
    batch it just saw, which we collect and average.
    """
    layers = _bn_layers(model)
    means = [[] for _ in layers]
    variances = [[] for _ in layers]
    with model.predicting("batch"):
        for idx in batches(len(X), batch_size, seed):
            model.forward(X[idx])
            for k, bn in enumerate(layers):
                mean, var = bn.batch_statistics()  # (D,), (D,)  biased batch variance
                means[k].append(mean)
                variances[k].append(var)
    return [population_estimate(np.array(mk), np.array(vk), batch_size, unbiased)
            for mk, vk in zip(means, variances, strict=True)]


def recalibrate(model, X, batch_size=64, seed=0, unbiased=True):
    """Replace every BN layer's running statistics by population estimates over X; return model.

    Use it after training (or after anything that changed the weights without updating the
    buffers, e.g. averaging weights): a cumulative, momentum-free average over all of X.
    """
    for bn, (mean, var) in zip(_bn_layers(model), population_statistics(
            model, X, batch_size, seed, unbiased), strict=True):
        bn.running_mean, bn.running_var = mean, var
    return model


# ----------------------------------------------------------------------------------------------
# Conventions across frameworks


@dataclass(frozen=True)
class Convention:
    """How a framework's batch-norm layer keeps its running statistics."""

    name: str
    momentum: float  # the default value of the framework's `momentum` argument
    momentum_weighs: str  # "old" or "new": which value the framework's momentum multiplies
    eps: float
    running_var: str  # "biased" or "unbiased" batch variance fed into the moving average
    init: tuple = (0.0, 1.0)  # initial (running_mean, running_var)

    def course_momentum(self):
        """The same momentum in this course's convention (weight of the OLD value)."""
        return self.momentum if self.momentum_weighs == "old" else 1 - self.momentum


COURSE = Convention("this course", DEFAULT_MOMENTUM, "old", DEFAULT_EPS, "biased")
PYTORCH = Convention("PyTorch BatchNorm1d", 0.1, "new", 1e-5, "unbiased")
# Keras 3 (keras.layers.BatchNormalization); tf.keras in TensorFlow 2 with its fused kernel may
# feed another variance to its moving average: not checked here.
KERAS = Convention("Keras 3 BatchNormalization", 0.99, "old", 1e-3, "biased")
CONVENTIONS = (COURSE, PYTORCH, KERAS)


def to_pytorch_momentum(momentum):
    """This course's momentum (weight of old) as PyTorch's (weight of new), and back: 1 - m."""
    return 1 - momentum


def unbiased_var(var, n):
    """Biased variance (divide by n) of a batch of n, rescaled to the unbiased one (n - 1)."""
    return var * n / (n - 1)


def running_update(running_mean, running_var, x, momentum=DEFAULT_MOMENTUM):
    """One train-mode update of the buffers, this course's (and Keras') way."""
    mu, var = x.mean(axis=0), x.var(axis=0)  # (D,), (D,)
    return ema_update(running_mean, mu, momentum), ema_update(running_var, var, momentum)


def pytorch_running_update(running_mean, running_var, x, momentum=0.1):
    """One train-mode update of the buffers, PyTorch's way: momentum weighs the NEW value, and
    the variance fed in is the unbiased one (the layer still normalises with the biased one)."""
    if x.shape[0] < 2:
        raise ValueError("an unbiased variance needs at least two examples")
    mu, var = x.mean(axis=0), x.var(axis=0, ddof=1)  # (D,), (D,)  ddof=1: divide by N - 1
    new_mean = (1 - momentum) * running_mean + momentum * mu  # (D,)
    new_var = (1 - momentum) * running_var + momentum * var  # (D,)
    return new_mean, new_var


def simulate(convention, xs, momentum=None):
    """Running (mean, var) after feeding the batches xs through a convention's update rule."""
    m = convention.momentum if momentum is None else momentum
    D = xs[0].shape[1]
    rm, rv = np.full(D, convention.init[0]), np.full(D, convention.init[1])  # (D,), (D,)
    for x in xs:
        if convention.momentum_weighs == "new":
            rm, rv = pytorch_running_update(rm, rv, x, m)
        else:
            rm, rv = running_update(rm, rv, x, m)
    return rm, rv


def warmup_test_outputs(xs, X_eval, momentum=DEFAULT_MOMENTUM, init_var=1.0, eps=DEFAULT_EPS):
    """RMS of a fresh BN layer's (gamma=1, beta=0) test-mode outputs on X_eval, before and after
    each train step on the batches xs: shape (K + 1,). Near 1 once the running stats are right."""
    from course.batchnorm import batchnorm_forward

    D = X_eval.shape[1]
    gamma, beta = np.ones(D), np.zeros(D)  # (D,), (D,)
    bn_param = {"momentum": momentum, "eps": eps, "running_mean": np.zeros(D),
                "running_var": np.full(D, float(init_var))}
    rms = []
    for k in range(len(xs) + 1):
        bn_param["mode"] = "test"
        out, _ = batchnorm_forward(X_eval, gamma, beta, bn_param)  # (N_eval, D)
        rms.append(np.sqrt(np.mean(out**2)))
        if k < len(xs):
            bn_param["mode"] = "train"
            batchnorm_forward(xs[k], gamma, beta, bn_param)
    return np.array(rms)  # (K + 1,)


def warmup_study(X_train, X_val, W1, steps=50, batch_size=64, momentum=DEFAULT_MOMENTUM):
    """RMS of a fresh first BN layer's test-mode outputs (inputs X @ W1) after each of `steps`
    training steps, with running_var started at 0 and at 1: {"rms": {init: (steps + 1,)}}."""
    H, Hv = X_train @ W1, X_val @ W1  # (N, D), (N_val, D)  inputs of the first BN layer
    xs = [H[idx] for seed in range(steps) for idx in batches(len(H), batch_size, seed)][:steps]
    return {"experiment": "warmup", "rms": {v0: warmup_test_outputs(xs, Hv, momentum, v0)
                                            for v0 in (0.0, 1.0)}}


def population_study(model, X_train, X_val, y_val, batch_size=64):
    """The paper's population statistics against the exact ones (first BN layer) and the moving
    averages (every BN layer), and test-mode accuracy with moving averages, recalibrated
    buffers, stale buffers and stale-then-recalibrated buffers."""
    import copy

    from course.train import accuracy

    pop = population_statistics(model, X_train, batch_size)
    H1 = X_train @ model.W[0] + model.b[0]  # (N, D)  inputs of the first BN layer
    used = np.concatenate(batches(len(H1), batch_size))  # the examples in full batches
    mean1, var1 = pop[0]
    per_layer = [(float(np.median(np.abs(bn.running_mean - m) / np.sqrt(v))),
                  float(np.median(bn.running_var / v)))
                 for bn, (m, v) in zip(_bn_layers(model), pop, strict=True)]
    stale = copy.deepcopy(model)
    for bn in _bn_layers(stale):  # buffers never updated, e.g. after averaging two runs' weights
        bn.running_mean = np.zeros_like(bn.running_mean)
        bn.running_var = np.ones_like(bn.running_var)
    acc = {"moving averages": accuracy(model, X_val, y_val),
           "recalibrated": accuracy(recalibrate(copy.deepcopy(model), X_train, batch_size),
                                    X_val, y_val),
           "stale buffers (defaults)": accuracy(stale, X_val, y_val),
           "stale, then recalibrated": accuracy(recalibrate(stale, X_train, batch_size),
                                                X_val, y_val)}
    return {"experiment": "population", "batch_size": batch_size,
            "mean_error": float(np.abs(mean1 - H1[used].mean(axis=0)).max()),
            "var_ratio": float(np.median(var1 / H1.var(axis=0))),
            "per_layer": per_layer, "acc": acc}


def eps_study(pixels, groups=(("low-variance pixels", slice(3, 7)),
                              ("typical pixels", slice(30, 34))), eps=(1e-3, 1e-5)):
    """Test-mode outputs of features (columns of pixels, ranked by variance) with Keras' eps
    against PyTorch's, the running statistics being the exact ones: per group, the variances
    and the ratio of mean |output| with eps[0] to that with eps[1]."""
    from course.batchnorm import batchnorm_forward

    var = pixels.var(axis=0)  # (D,)
    order = np.argsort(var)
    out = {}
    for label, rank in groups:
        cols = order[rank]
        stats = {"running_mean": pixels.mean(axis=0)[cols], "running_var": var[cols]}
        k = len(cols)
        y = {e: batchnorm_forward(pixels[:, cols], np.ones(k), np.zeros(k),
                                  {"mode": "test", "eps": e, **stats})[0] for e in eps}
        out[label] = {"var": var[cols],
                      "ratio": np.abs(y[eps[0]]).sum(axis=0) / np.abs(y[eps[1]]).sum(axis=0)}
    return {"experiment": "eps", "eps": eps, "groups": out}


def _eps_claims(r):
    low, typical = r["groups"]["low-variance pixels"], r["groups"]["typical pixels"]
    return [
        Claim(f"eps = {r['eps'][0]:g} instead of {r['eps'][1]:g} shrinks the test-mode outputs of "
              "low-variance features several-fold", np.all(low["ratio"] < 0.5),
              {"largest ratio": low["ratio"].max()}),
        Claim("and leaves typical features almost unchanged", np.all(typical["ratio"] > 0.98),
              {"smallest ratio": typical["ratio"].min()}),
    ]


def _warmup_claims(r):
    zero, one = r["rms"][0.0], r["rms"][1.0]
    return [
        Claim("before the first step, running_var started at 0 makes test-mode outputs hundreds "
              "of times too large", zero[0] > 100 * one[0], {"ratio at step 0": zero[0] / one[0]}),
        Claim("a zero start is never below a start at 1, and the two meet once warmed up",
              np.all(zero >= one) and zero[-1] / one[-1] < 1.01,
              {"ratio after 1 step": zero[1] / one[1],
               "ratio at the end": f"{zero[-1] / one[-1]:.4f}"},
              f"{len(zero) - 1} steps, momentum 0.9"),
    ]


def _population_claims(r):
    acc = r["acc"]
    return [
        Claim("the paper's corrected variance is within 1 % of the exact one (layer 1)",
              abs(r["var_ratio"] - 1) < 0.01, {"median ratio": f"{r['var_ratio']:.4f}"}),
        Claim("recalibrating this well-trained model changes its accuracy little",
              abs(acc["recalibrated"] - acc["moving averages"]) < 0.02,
              {"moving averages": acc["moving averages"], "recalibrated": acc["recalibrated"]}),
        Claim("stale buffers cost over 5 points of accuracy, and recalibrating recovers it",
              acc["stale buffers (defaults)"] < acc["moving averages"] - 0.05
              and acc["stale, then recalibrated"] > acc["moving averages"] - 0.02,
              {k: acc[k] for k in ("stale buffers (defaults)", "stale, then recalibrated")}),
    ]


def claims(result):
    """The claims notebook 04 reads from a warmup_study, population_study or eps_study."""
    return {"warmup": _warmup_claims, "population": _population_claims,
            "eps": _eps_claims}[result["experiment"]](result)
