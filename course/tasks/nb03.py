"""Graded tasks of notebook 03: the batchnorm backward pass, staged and in closed form."""

import numpy as np

from course.batchnorm import batchnorm_backward, batchnorm_backward_alt, batchnorm_forward
from course.tasks.base import Case, Mistake, Task, random_gamma_beta
from course.tasks.diagnose import CLOSED, STAGED, Gradient, bn_terms, dgamma_view

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
    # (Built from _terms, not from the reference: the grading copy has no reference to call.)
    _, _, direct, via_mu, via_var = _terms(dout, cache)
    return direct + via_mu + via_var, (dout * cache["x_hat"]).sum(axis=1), dout.sum(axis=1)


def _all_wrong_axis(dout, cache):
    # Every sum runs over the features; keepdims lets the shapes broadcast anyway.
    x_hat, gamma, inv_std = cache["x_hat"], cache["gamma"], cache["inv_std"]
    D = dout.shape[1]
    dbeta = dout.sum(axis=1, keepdims=True)  # (N, 1)
    dgamma = (dout * x_hat).sum(axis=1, keepdims=True)  # (N, 1)
    dx = gamma * inv_std / D * (D * dout - dbeta - x_hat * dgamma)  # (N, D)
    return dx, dgamma.ravel(), dbeta.ravel()


def _staged(dout, cache, *, half=0.5, dsq_count=0, gamma_in_dx_hat=True, dmu_sign=-1.0, two=2.0):
    """The staged backward pass with switches that plant one slip each (defaults = correct)."""
    x_hat, gamma, xmu, var = cache["x_hat"], cache["gamma"], cache["xmu"], cache["var"]
    eps, inv_std = cache["eps"], cache["inv_std"]
    N = dout.shape[0]
    dbeta, dgamma = dout.sum(axis=0), (dout * x_hat).sum(axis=0)  # (D,), (D,)
    dx_hat = dout * gamma if gamma_in_dx_hat else dout  # (N, D)
    dvar = -(dx_hat * xmu).sum(axis=0) / (var + eps) * half / np.sqrt(var + eps)  # (D,)
    dsq = dvar / (dsq_count or N)  # (D,)
    dxmu = dx_hat * inv_std + two * xmu * dsq  # (N, D)
    dmu = dmu_sign * dxmu.sum(axis=0)  # (D,)
    return dxmu + dmu / N, dgamma, dbeta


def _no_half(dout, cache):
    return _staged(dout, cache, half=1.0)


def _dsq_n_minus_1(dout, cache):
    return _staged(dout, cache, dsq_count=dout.shape[0] - 1)


def _no_gamma_in_dx_hat(dout, cache):
    return _staged(dout, cache, gamma_in_dx_hat=False)


def _no_two(dout, cache):
    return _staged(dout, cache, two=1.0)


def _dmu_sign(dout, cache):
    return _staged(dout, cache, dmu_sign=1.0)


def _cases(rng):
    shapes = [("small batch (4, 3)", (4, 3), 1.0),
              ("features on very different scales (16, 5)", (16, 5),
               np.array([1e-2, 1.0, 10.0, 100.0, 1e3])),
              ("wide batch (3, 8): more features than examples, one of spread 1e-3, where ε "
               "matters", (3, 8), np.array([2.0] * 7 + [1e-3]))]
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


def _mistakes(staged):
    """The catalogue in the words of the exercise: node names for the staged pass, terms of
    dx = γ/(N·σ)·(N·dout − Σdout − x̂·Σ(dout·x̂)) for the closed form."""
    def say(staged_words, closed_words):
        return staged_words if staged else closed_words
    return (
        Mistake("no_mu_path", say(
            "dx misses the path through the mean μ: x reaches the output directly and through "
            "μ = mean(x); add dmu / N to every row (dmu = -dxmu.sum(axis=0)).",
            "dx misses the −Σdout term (the path through the mean): dx = γ/(N·σ)·(N·dout − "
            "Σdout − x̂·Σ(dout·x̂)), with the sums over the batch (axis=0)."), (_no_mu_path,)),
        Mistake("no_var_path", say(
            "dx misses the path through the variance σ²: x - μ feeds x_hat directly and "
            "through (x - μ)² → σ²; add 2 * xmu * dvar / N to dxmu.",
            "dx misses the −x̂·Σ(dout·x̂) term (the path through the variance): dx = "
            "γ/(N·σ)·(N·dout − Σdout − x̂·Σ(dout·x̂))."), (_no_var_path,)),
        Mistake("swapped", "dgamma and dbeta are mixed up: dbeta = dout.sum(axis=0) and "
                "dgamma = (dout * x_hat).sum(axis=0).", (_swapped,)),
        Mistake("wrong_axis", "dgamma and dbeta were summed over the wrong axis (one number per "
                "example); sum over the batch, axis=0, to get one number per feature.",
                (_params_wrong_axis,)),
        Mistake("wrong_axis_all", "the sums run over the wrong axis (the features); every "
                "parameter is shared by the rows of the batch, so sum over axis=0.",
                (_all_wrong_axis,)),
        Mistake("no_half_in_dvar", say(
            "dvar is twice too large: the ½ of d√v/dv = ½/√v is missing, "
            "dvar = dstd * 0.5 / np.sqrt(var + eps).",
            "the x̂·Σ(dout·x̂) term is twice too large (a stray factor 2, as from dropping the "
            "½ of d√v/dv): dx = γ/(N·σ)·(N·dout − Σdout − x̂·Σ(dout·x̂))."), (_no_half,)),
        Mistake("no_two_in_dxmu", say(
            "the path through σ² is half what it should be: the 2 of d(xmu²)/dxmu is missing, "
            "dxmu += 2 * xmu * dsq.",
            "the x̂·Σ(dout·x̂) term is half what it should be: dx = γ/(N·σ)·(N·dout − Σdout − "
            "x̂·Σ(dout·x̂)) has it with coefficient 1."), (_no_two,)),
        Mistake("dsq_n_minus_1", say(
            "dsq divides by N - 1: var = sq.mean(axis=0) is the biased mean over N rows, so "
            "dsq = dvar / N.",
            "the x̂·Σ(dout·x̂) term is scaled by N/(N − 1): the variance divides by N, so every "
            "1/N of dx = γ/(N·σ)·(N·dout − Σdout − x̂·Σ(dout·x̂)) stays 1/N."),
            (_dsq_n_minus_1,)),
        Mistake("no_gamma_in_dx_hat", say(
            "γ is missing in dx_hat: out = gamma * x_hat, so dx_hat = dout * gamma.",
            "γ is missing from the prefactor: dx = γ/(N·σ)·(N·dout − Σdout − x̂·Σ(dout·x̂))."),
            (_no_gamma_in_dx_hat,)),
        Mistake("dmu_sign", say(
            "dmu has the wrong sign: xmu = x - mu, so dmu = -dxmu.sum(axis=0).",
            "the Σdout term has the wrong sign: it is subtracted, N·dout − Σdout − "
            "x̂·Σ(dout·x̂)."), (_dmu_sign,)),
    )


def _view_terms(inputs):
    """x_hat, dout·γ and 1/σ of the case, for the gradient diagnosis."""
    cache = inputs["cache"]
    return bn_terms(cache["x_hat"], inputs["dout"] * inputs["gamma"], cache["inv_std"])


_DGAMMA = dgamma_view(lambda inputs: (inputs["dout"], inputs["x"], inputs["cache"]["x_hat"]))

# The keys of batchnorm_forward's train cache, for hints (tests check they match; a literal, so
# that importing this module never calls a function a grading copy may have stubbed out).
_CACHE_KEYS = ("x", "mu", "xmu", "sq", "var", "std", "inv_std", "x_hat", "gamma", "beta", "eps")
_COMMON = dict(notebook=NOTEBOOK, points=3, make_cases=_cases, run=_run,
               mutable=("cache",), cache_keys=_CACHE_KEYS,
               checks="dx, dgamma, dbeta for random γ, β and a random upstream gradient")

TASKS = [
    Task(reference=(batchnorm_backward,), mistakes=_mistakes(staged=True),
         may_use=(),
         views={"dx": Gradient(terms=_view_terms, **STAGED), "dgamma": _DGAMMA}, **_COMMON),
    Task(reference=(batchnorm_backward_alt,), mistakes=_mistakes(staged=False),
         may_use=(),
         views={"dx": Gradient(terms=_view_terms, **CLOSED), "dgamma": _DGAMMA}, **_COMMON),
]
