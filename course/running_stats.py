"""Running statistics: moving averages, the paper's population estimates, recalibration, and the
momentum/variance conventions of this course, PyTorch and Keras.

Test mode needs a mean and variance that do not depend on the other examples in the batch. They
are estimated during training, one batch at a time; this module holds every way of doing so.
"""

from dataclasses import dataclass

import numpy as np

from course.batchnorm import DEFAULT_EPS, DEFAULT_MOMENTUM, ema_update

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
KERAS = Convention("Keras BatchNormalization", 0.99, "old", 1e-3, "biased")
CONVENTIONS = (COURSE, PYTORCH, KERAS)


def to_pytorch_momentum(momentum):
    """This course's momentum (weight of old) as PyTorch's (weight of new), and back: 1 - m."""
    return 1 - momentum


def unbiased_var(var, n):
    """Biased variance (divide by n) of a batch of n, rescaled to the unbiased one (n - 1)."""
    return var * n / (n - 1)


def biased_var(var, n):
    """Unbiased variance of a batch of n, rescaled to the biased one."""
    return var * (n - 1) / n


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
