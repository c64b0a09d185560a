"""Graded task of notebook 02: the batchnorm forward pass in train mode."""

import numpy as np

from course.batchnorm import DEFAULT_EPS, batchnorm_forward
from course.tasks.base import Case, Mistake, Task, explicit_bn_param, random_gamma_beta
from course.tasks.diagnose import batchnorm_view

NOTEBOOK = "02_forward_pass"


def _forward_with(x, gamma, beta, bn_param, mean, scale):
    """A train-mode forward pass whose centring and scaling are supplied by the caller."""
    eps = bn_param.get("eps", DEFAULT_EPS)
    mu = mean(x)
    x_hat = (x - mu) / scale(x - mu, eps)  # (N, D)
    out = gamma * x_hat + beta  # (N, D)
    return out, {"x": x, "x_hat": x_hat, "gamma": gamma, "beta": beta, "eps": eps}


def _col_mean(x):
    return x.mean(axis=0)  # (D,)


def _ddof1(x, gamma, beta, bn_param):
    return _forward_with(x, gamma, beta, bn_param, _col_mean,
                         lambda xmu, eps: np.sqrt(xmu.var(axis=0, ddof=1) + eps))


def _eps_outside(x, gamma, beta, bn_param):
    return _forward_with(x, gamma, beta, bn_param, _col_mean,
                         lambda xmu, eps: np.sqrt((xmu**2).mean(axis=0)) + eps)


def _eps_missing(x, gamma, beta, bn_param):
    return _forward_with(x, gamma, beta, bn_param, _col_mean,
                         lambda xmu, eps: np.sqrt((xmu**2).mean(axis=0)))


def _wrong_axis(x, gamma, beta, bn_param):
    # Statistics per example (over the features) instead of per feature (over the batch).
    return _forward_with(x, gamma, beta, bn_param, lambda v: v.mean(axis=1, keepdims=True),
                         lambda xmu, eps: np.sqrt((xmu**2).mean(axis=1, keepdims=True) + eps))


def _whole_array(x, gamma, beta, bn_param):
    # np.mean(x) and np.var(x) without axis: one mean and variance for every entry.
    return _forward_with(x, gamma, beta, bn_param, lambda v: v.mean(),
                         lambda xmu, eps: np.sqrt((xmu**2).mean() + eps))


def _ddof1_eps_outside(x, gamma, beta, bn_param):
    return _forward_with(x, gamma, beta, bn_param, _col_mean,
                         lambda xmu, eps: xmu.std(axis=0, ddof=1) + eps)


def _minus_beta(x, gamma, beta, bn_param):
    # out = gamma * x_hat - beta (built like the others, never from the reference)
    return _forward_with(x, gamma, beta * -1.0, bn_param, _col_mean,
                         lambda xmu, eps: np.sqrt((xmu**2).mean(axis=0) + eps))


def _gamma_beta_swapped(x, gamma, beta, bn_param):
    # beta * x_hat + gamma (tf.nn.batch_normalization takes the offset before the scale)
    out, cache = _forward_with(x, beta, gamma, bn_param, _col_mean,
                               lambda xmu, eps: np.sqrt((xmu**2).mean(axis=0) + eps))
    return out, cache


def _divided_by_gamma(x, gamma, beta, bn_param):
    return _forward_with(x, 1 / gamma, beta, bn_param, _col_mean,
                         lambda xmu, eps: np.sqrt((xmu**2).mean(axis=0) + eps))


def _float32(x, gamma, beta, bn_param):
    # The whole computation in single precision (x.astype(np.float32) at the start), cast back
    # at the end: a float32 output itself is refused by its dtype before any comparison.
    x32, g32, b32 = (np.asarray(a, dtype=np.float32) for a in (x, gamma, beta))
    eps = np.float32(bn_param.get("eps", DEFAULT_EPS))
    xmu = x32 - x32.mean(axis=0)  # (N, D) float32
    out = g32 * xmu / np.sqrt((xmu**2).mean(axis=0) + eps) + b32  # (N, D) float32
    return out.astype(np.float64), {}


def _running_in_train(x, gamma, beta, bn_param):
    # Train mode normalising with the running statistics (zeros and ones when there are none).
    D = x.shape[1]
    rm, rv = bn_param.get("running_mean", np.zeros(D)), bn_param.get("running_var", np.ones(D))
    return _forward_with(x, gamma, beta, bn_param, lambda v: rm,
                         lambda xmu, eps: np.sqrt(rv + eps))


def _affine_first(x, gamma, beta, bn_param):
    # Scale and shift first, then standardise: the normalisation undoes gamma and beta.
    z = gamma * x + beta  # (N, D)
    ones, zeros = np.ones_like(gamma), np.zeros_like(beta)
    return _forward_with(z, ones, zeros, bn_param, _col_mean,
                         lambda zmu, eps: np.sqrt((zmu**2).mean(axis=0) + eps))


def _buffers(inputs):
    """The running (mean, var) in bn_param, or where a fresh layer starts them."""
    p, D = inputs["bn_param"], len(inputs["gamma"])
    return p.get("running_mean", np.zeros(D)), p.get("running_var", np.ones(D))


def _cases(rng):
    cases = []
    # (4, 3): a tiny batch makes ddof=1 obvious; column 2 barely varies, so eps matters there.
    x = rng.normal(2.0, 3.0, (4, 3))  # (N, D)
    x[:, 2] = 5.0 + 1e-3 * rng.normal(size=4)
    gamma, beta = random_gamma_beta(rng, 3)
    cases.append(Case("small batch (4, 3) with one nearly constant feature",
                      {"x": x, "gamma": gamma, "beta": beta, "bn_param": {"mode": "train"}}))
    # (16, 5): features on scales from 1e-3 to 1e3.
    x = rng.normal(1.0, 1.0, (16, 5)) * np.array([1e-3, 1.0, 10.0, 100.0, 1e3])  # (N, D)
    x[:, 1] += 1e6  # far from zero: a one-pass E[x²] − E[x]² variance cancels there
    gamma, beta = random_gamma_beta(rng, 5)
    cases.append(Case("features on very different scales (16, 5), one near 1e6",
                      {"x": x, "gamma": gamma, "beta": beta,
                       "bn_param": explicit_bn_param(running_mean=np.zeros(5),
                                                     running_var=np.ones(5))}))
    # (3, 8): more features than examples, so per-example statistics cannot pass by accident.
    x = rng.normal(0.0, 2.0, (3, 8)) + rng.normal(0.0, 5.0, 8)  # (N, D)
    x[:, 5] = -1.0 + 2e-3 * rng.normal(size=3)
    gamma, beta = random_gamma_beta(rng, 8)
    cases.append(Case("wide batch (3, 8): more features than examples, eps 1e-3",
                      {"x": x, "gamma": gamma, "beta": beta,
                       "bn_param": {"mode": "train", "eps": 1e-3}}))
    return cases


def _run(fns, inputs):
    (forward,) = fns
    result = forward(inputs["x"], inputs["gamma"], inputs["beta"], inputs["bn_param"])
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError("batchnorm_forward must return the pair (out, cache)")
    out, _cache = result  # caches may differ between correct solutions; only `out` is judged
    return {"out": out}


TASKS = [
    Task(notebook=NOTEBOOK, points=3,
         checks="train-mode output `out` on random batches with random gamma and beta",
         reference=(batchnorm_forward,), make_cases=_cases, run=_run, mutable=("bn_param",),
         may_use=(),
         views={"out": batchnorm_view(running=_buffers)},
         mistakes=(
             Mistake("ddof1", "the variance was computed with ddof=1 (dividing by N - 1); "
                     "batch normalisation uses the biased variance: divide by N "
                     "(np.var's default, or ((x - mu)**2).mean(axis=0)).", (_ddof1,)),
             Mistake("eps_outside", "ε was added outside the square root (std + eps); "
                     "use np.sqrt(var + eps), which matters for features of tiny variance.",
                     (_eps_outside,)),
             Mistake("eps_missing", "ε is missing: divide by np.sqrt(var + eps) with "
                     "eps = bn_param.get('eps', 1e-5), or a feature of tiny variance blows up.",
                     (_eps_missing,)),
             Mistake("wrong_axis", "the statistics were taken over the wrong axis (per example); "
                     "each feature is normalised over the batch: use axis=0.", (_wrong_axis,)),
             Mistake("affine_first", "γ and β were applied before normalising, so the "
                     "normalisation removed them; standardise first, then out = gamma * x_hat "
                     "+ beta.", (_affine_first,)),
             Mistake("whole_array", "one mean and one variance for the whole array (np.mean(x) "
                     "without axis): each feature has its own statistics over the batch, "
                     "x.mean(axis=0) and x.var(axis=0).", (_whole_array,)),
             Mistake("ddof1_eps_outside", "two slips in the denominator: the standard deviation "
                     "divides by N - 1 (ddof=1) and ε is added outside the root; use "
                     "np.sqrt(x.var(axis=0) + eps).", (_ddof1_eps_outside,)),
             Mistake("minus_beta", "β is subtracted (gamma * x_hat - beta): the shift is added, "
                     "out = gamma * x_hat + beta.", (_minus_beta,)),
             Mistake("gamma_beta_swapped", "γ and β are swapped (beta * x_hat + gamma): the "
                     "scale multiplies, the shift is added, out = gamma * x_hat + beta.",
                     (_gamma_beta_swapped,)),
             Mistake("divided_by_gamma", "x_hat was divided by γ (x_hat / gamma + beta): γ "
                     "scales by multiplying, out = gamma * x_hat + beta.", (_divided_by_gamma,)),
             Mistake("float32", "computed in float32 (single precision keeps only about 7 "
                     "digits, too few for a feature of tiny variance): keep the float64 inputs "
                     "as they are, without .astype(np.float32).", (_float32,)),
             Mistake("running_in_train", "train mode normalised with the running statistics: "
                     "in train mode use the batch's own mean and variance (and update the "
                     "running ones); only test mode reads running_mean and running_var.",
                     (_running_in_train,)),
         )),
]
