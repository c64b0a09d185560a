"""course.whitening: PCA/ZCA whitening against per-feature standardisation."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from course.experiments import digits
from course.whitening import (
    batch_covariance_spectrum,
    condition_number,
    fixed_budget,
    flops,
    whiten,
    whitening_matrix,
)


def _data(seed, D):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(D, D))  # correlated features
    return rng.normal(size=(200, D)) @ A + rng.normal(size=D)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 8), st.sampled_from(["zca", "pca"]))
def test_whitened_data_has_identity_covariance(seed, D, kind):
    Z = whiten(_data(seed, D), kind, eps=0.0)
    assert np.allclose(Z.mean(axis=0), 0, atol=1e-9)
    assert np.allclose(Z.T @ Z / len(Z), np.eye(D), atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 8))
def test_zca_is_symmetric_and_pca_a_rotation_of_it(seed, D):
    X = _data(seed, D)
    _, Mz = whitening_matrix(X, "zca", 0.0)
    _, Mp = whitening_matrix(X, "pca", 0.0)
    assert np.allclose(Mz, Mz.T)
    R = np.linalg.solve(Mz, Mp)  # Mp = Mz R with R orthogonal
    assert np.allclose(R.T @ R, np.eye(D), atol=1e-6)


def test_whitening_removes_the_ill_conditioning_of_the_digits():
    X = digits().X_train
    assert condition_number(X)[0] > 100
    assert condition_number(whiten(X))[0] < 1.01


def test_full_whitening_costs_grow_faster_than_per_feature():
    ratios = [flops(64, D)[1] / flops(64, D)[0] for D in (64, 256, 1024)]
    assert ratios[0] > 10 and ratios[2] / ratios[1] > 10


def test_a_batch_covariance_of_the_digits_is_singular():
    s = batch_covariance_spectrum(digits().X_train, 64)
    assert s["zero_eigenvalues"] > 0 and s["rank"] < 64


def test_whitening_buys_no_accuracy_for_softmax_regression_on_the_digits():
    r = fixed_budget(digits(), kinds=("standardized", "zca"), seeds=range(3))
    assert abs(r["zca"].mean() - r["standardized"].mean()) < 0.03


def test_the_whitening_claims_hold_for_the_inputs_trained_on():
    from course.claims import assert_all_hold
    from course.whitening import batch_covariance_spectrum, claims, condition_number, fixed_budget

    d = digits()
    cond = condition_number(whiten(d.X_train, eps=0.1))[0]
    assert 1.5 < cond < 5  # eps = 0.1 keeps it well above 1: not the "1" of a tiny eps
    accs = [fixed_budget(d, sizes=s, seeds=range(5)) for s in ((64, 10), (64, 64, 64, 10))]
    assert_all_hold(claims(d.X_train, cond, accs, batch_covariance_spectrum(d.X_train, 64)))
