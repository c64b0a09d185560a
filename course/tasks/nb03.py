"""Graded tasks of notebook 03: the batchnorm backward pass, staged and in closed form."""

import numpy as np

from course.batchnorm import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward
from course.tasks.base import Case, Mistake, Task, random_gamma_beta

NOTEBOOK = "03_backward_pass"


def _terms(dout, cache):
    """The pieces every variant below combines: dgamma, dbeta and the three terms of dx."""
    x_hat, gamma, inv_std = cache["x_hat"], cache["gamma"], cache["inv_std"]
    dbeta = dout.sum(axis=0)  # (D,)
    dgamma = (dout * x_hat).sum(axis=0)  # (D,)
    direct = gamma * inv_std * dout  # (N, D)   through x_hat alone
    via_mu = -gamma * inv_std * dout.mean(axis=0)  # (D,)   through the mean
    via_var = -gamma * inv_std * x_hat * (dout * x_hat).mean(axis=0)  # (N, D) through the var
    return dgamma, dbeta, direct, via_mu, via_var


def _no_mu_path(dout, cache):
    dgamma, dbeta, direct, _, via_var = _terms(dout, cache)
    return direct + via_var, dgamma, dbeta


def _no_var_path(dout, cache):
    dgamma, dbeta, direct, via_mu, _ = _terms(dout, cache)
    return direct + via_mu, dgamma, dbeta


def _swapped(dout, cache):
    dgamma, dbeta, direct, via_mu, via_var = _terms(dout, cache)
    return direct + via_mu + via_var, dbeta, dgamma


def _params_wrong_axis(dout, cache):
    # dx is right, but dgamma and dbeta are summed over the features: one number per example.
    dx, _, _ = batchnorm_backward_alt(dout, cache)
    return dx, (dout * cache["x_hat"]).sum(axis=1), dout.sum(axis=1)


def _all_wrong_axis(dout, cache):
    # Every sum runs over the features; keepdims lets the shapes broadcast anyway.
    x_hat, gamma, inv_std = cache["x_hat"], cache["gamma"], cache["inv_std"]
    D = dout.shape[1]
    dbeta = dout.sum(axis=1, keepdims=True)  # (N, 1)
    dgamma = (dout * x_hat).sum(axis=1, keepdims=True)  # (N, 1)
    dx = gamma * inv_std / D * (D * dout - dbeta - x_hat * dgamma)  # (N, D)
    return dx, dgamma.ravel(), dbeta.ravel()


def _cases(rng):
    shapes = [("small batch (4, 3)", (4, 3), 1.0),
              ("features on very different scales (16, 5)", (16, 5),
               np.array([1e-2, 1.0, 10.0, 100.0, 1e3])),
              ("wide batch (3, 8): more features than examples", (3, 8), 2.0)]
    cases = []
    for label, (N, D), scale in shapes:
        x = rng.normal(1.0, 1.0, (N, D)) * scale  # (N, D)
        gamma, beta = random_gamma_beta(rng, D)  # (D,), (D,)
        dout = rng.normal(0.0, 1.0, (N, D))  # (N, D)  random, never all ones
        # The student's backward consumes the reference forward's cache (keys documented in
        # 03); it is made here, with the inputs, so a grader sends it as data.
        _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
        cases.append(Case(f"{label}, random γ, β and dout",
                          {"x": x, "gamma": gamma, "beta": beta, "dout": dout, "cache": cache}))
    return cases


def _run(fns, inputs):
    (backward,) = fns
    result = backward(inputs["dout"], inputs["cache"])
    if not (isinstance(result, tuple) and len(result) == 3):
        raise TypeError("the backward pass must return the triple (dx, dgamma, dbeta)")
    dx, dgamma, dbeta = result
    return {"dx": dx, "dgamma": dgamma, "dbeta": dbeta}


_MISTAKES = (
    Mistake("no_mu_path", "dx misses the path through the mean μ: x reaches the output directly "
            "and through μ = mean(x); add dmu / N to every row (dmu = -dxmu.sum(axis=0)).",
            (_no_mu_path,)),
    Mistake("no_var_path", "dx misses the path through the variance σ²: x - μ feeds x_hat "
            "directly and through (x - μ)² → σ²; add 2 * xmu * dvar / N to dxmu.",
            (_no_var_path,)),
    Mistake("swapped", "dgamma and dbeta are mixed up: dbeta = dout.sum(axis=0) and "
            "dgamma = (dout * x_hat).sum(axis=0).", (_swapped,)),
    Mistake("wrong_axis", "dgamma and dbeta were summed over the wrong axis (one number per "
            "example); sum over the batch, axis=0, to get one number per feature.",
            (_params_wrong_axis,)),
    Mistake("wrong_axis_all", "the sums run over the wrong axis (the features); every "
            "parameter is shared by the rows of the batch, so sum over axis=0.",
            (_all_wrong_axis,)),
)

_COMMON = dict(notebook=NOTEBOOK, points=3, make_cases=_cases, run=_run,
               mistakes=_MISTAKES, mutable=("cache",),
               checks="dx, dgamma, dbeta for random γ, β and a random upstream gradient")

TASKS = [
    Task(reference=(batchnorm_backward,), **_COMMON),
    Task(reference=(batchnorm_backward_alt,), **_COMMON),
]
