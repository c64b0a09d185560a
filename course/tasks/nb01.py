"""Graded exercises of notebook 01: a layer's saturated fraction, per-feature standardising."""

import numpy as np

from course.batchnorm import DEFAULT_EPS
from course.saturation import SATURATION_THRESHOLD, saturation_fraction, standardize
from course.tasks.base import Case, Mistake, Task
from course.tasks.diagnose import Alternatives, batchnorm_view

NOTEBOOK = "01_why_normalize"


# --- saturation_fraction(z, threshold) -------------------------------------------------------

def _one_sided(z, threshold=SATURATION_THRESHOLD):
    return float(np.mean(z > threshold))


def _count(z, threshold=SATURATION_THRESHOLD):
    return int(np.sum(np.abs(z) > threshold))


def _per_feature(z, threshold=SATURATION_THRESHOLD):
    return np.mean(np.abs(z) > threshold, axis=0)  # (D,)


def _fixed_threshold(z, threshold=SATURATION_THRESHOLD):
    return float(np.mean(np.abs(z) > SATURATION_THRESHOLD))


def _saturation_cases(rng):
    # Every case has entries beyond both -t and +t, and thresholds other than 4, so that each
    # mistake gives a different answer from the reference and from every other mistake.
    wide = rng.normal(0.0, 4.0, size=(32, 8))  # (32, 8)
    shifted = rng.normal(1.5, 3.0, size=(64, 5))  # (64, 5) mostly positive, some far negative
    shifted[0, 0] = -9.0
    shifted[1:4, 1] = [2.5, -2.5, 4.0]  # exactly at ±threshold (and at 4): not saturated
    return [Case("pre-activations spread over both tails (32, 8), threshold 3",
                 {"z": wide, "t": 3.0}),
            Case("pre-activations shifted off centre (64, 5), some exactly at ±2.5 and 4, "
                 "threshold 2.5",
                 {"z": shifted, "t": 2.5}),
            Case("one wide layer (16, 40), threshold 5",
                 {"z": rng.normal(0.0, 5.0, size=(16, 40)), "t": 5.0})]


def _saturation_alternatives(inputs):
    """Other counts a student may take, per output (the threshold each output uses)."""
    z = inputs["z"]

    def forms(t):
        return {"at_threshold": (float(np.mean(np.abs(z) >= t)),
                                 "entries exactly at ±threshold were counted (>=): saturated "
                                 "means strictly beyond it, np.abs(z) > threshold"),
                "lower_tail": (float(np.mean(z < -t)), "only z < −threshold was counted: a "
                                                        "unit saturates in both tails"),
                "per_row": (float(np.sum(np.abs(z) > t) / z.shape[0]),
                            "the count was divided by the number of rows, z.shape[0]; divide "
                            "by the number of entries, z.size (or take np.mean)")}
    return forms


SATURATION_VIEWS = {
    "fraction": Alternatives(lambda inputs: _saturation_alternatives(inputs)(inputs["t"])),
    "fraction_at_default_threshold_4": Alternatives(
        lambda inputs: _saturation_alternatives(inputs)(SATURATION_THRESHOLD))}


def _saturation_run(fns, inputs):
    (fraction,) = fns
    return {"fraction": fraction(inputs["z"], threshold=inputs["t"]),
            "fraction_at_default_threshold_4": fraction(inputs["z"])}


SATURATION = Task(
    notebook=NOTEBOOK, points=1,
    checks="fraction of saturated entries of random pre-activation arrays, at the given "
           "threshold and at the default 4",
    reference=(saturation_fraction,), make_cases=_saturation_cases, run=_saturation_run,
    may_use=(),
    views=SATURATION_VIEWS,
    mistakes=(
        Mistake("one_sided", "only z > threshold is counted; a unit is saturated in both tails, "
                "so test |z| > threshold (np.abs)", (_one_sided,)),
        Mistake("count", "returned the number of saturated entries; divide by the number of "
                "entries to get a fraction (np.mean of the boolean array)", (_count,)),
        Mistake("per_feature", "returned one fraction per feature (mean over axis 0); return a "
                "single number over all entries of z (no axis)", (_per_feature,)),
        Mistake("fixed_threshold", "the `threshold` argument is ignored (always 4); compare "
                "with the threshold that was passed in", (_fixed_threshold,)),
    ))


# --- standardize(x, eps) ----------------------------------------------------------------------

def _ddof1(x, eps=DEFAULT_EPS):
    return (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0, ddof=1) + eps)


def _per_example(x, eps=DEFAULT_EPS):
    mu = x.mean(axis=1, keepdims=True)  # (N, 1)
    return (x - mu) / np.sqrt(x.var(axis=1, keepdims=True) + eps)


def _whole_batch(x, eps=DEFAULT_EPS):
    return (x - x.mean()) / np.sqrt(x.var() + eps)


def _std_plus_eps(x, eps=DEFAULT_EPS):
    return (x - x.mean(axis=0)) / (x.std(axis=0) + eps)


def _sqrt_eps_apart(x, eps=DEFAULT_EPS):
    return (x - x.mean(axis=0)) / (np.sqrt(x.var(axis=0)) + np.sqrt(eps))


def _no_eps(x, eps=DEFAULT_EPS):
    return (x - x.mean(axis=0)) / x.std(axis=0)


def _standardize_cases(rng):
    # Each case has one feature with a tiny spread (std ~ 1e-3, comparable to sqrt(eps)), where
    # sqrt(var + eps), std + eps and std give clearly different answers.
    def batch(n, d, tiny_col, far_col=None):
        x = rng.normal(2.0, 3.0, size=(n, d)) * rng.uniform(0.5, 20.0, size=d)  # (n, d)
        x[:, tiny_col] = 5.0 + 1e-3 * rng.normal(size=n)
        if far_col is not None:  # far from zero: a one-pass E[x²] − E[x]² variance cancels
            x[:, far_col] = 1e6 + rng.normal(size=n)
        return x

    return [Case("small batch (4, 3) with one nearly constant feature", {"x": batch(4, 3, 1)}),
            Case("batch (16, 5), features on different scales, one near 1e6",
                 {"x": batch(16, 5, 4, far_col=2)}),
            Case("batch (32, 10), features on different scales", {"x": batch(32, 10, 0)})]


def _standardize_run(fns, inputs):
    (fn,) = fns
    return {"out": fn(inputs["x"])}


STANDARDIZE = Task(
    notebook=NOTEBOOK, points=2,
    checks="per-feature standardisation of random batches, including a nearly constant feature",
    reference=(standardize,), make_cases=_standardize_cases, run=_standardize_run,
    may_use=(),
    views={"out": batchnorm_view(params="(none)", affine=False)},
    mistakes=(
        Mistake("ddof1", "variance computed with ddof=1 (unbiased, divide by N-1); normalise "
                "with the biased variance (divide by N), as batch normalization does", (_ddof1,)),
        Mistake("per_example", "statistics taken over the wrong axis (per example, axis=1); "
                "each feature is standardised over the batch: use axis=0", (_per_example,)),
        Mistake("whole_batch", "one mean and variance for the whole array; compute them per "
                "feature over the batch (axis=0)", (_whole_batch,)),
        Mistake("std_plus_eps", "ε added outside the square root (std + eps); use "
                "sqrt(var + eps)", (_std_plus_eps,)),
        Mistake("sqrt_eps_apart", "ε got its own square root (sqrt(var) + sqrt(eps)): the "
                "denominator is one root of the sum, sqrt(var + eps)", (_sqrt_eps_apart,)),
        Mistake("no_eps", "ε is missing: divide by sqrt(var + eps) so that a nearly constant "
                "feature does not blow up", (_no_eps,)),
    ))

TASKS = [SATURATION, STANDARDIZE]
