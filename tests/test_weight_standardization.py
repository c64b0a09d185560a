"""course.weight_standardization: standardised filters, and GN + WS beside BN."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from course.conv import conv_forward
from course.weight_standardization import weight_standardize


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10**6), st.floats(0.01, 100.0), st.floats(-10.0, 10.0))
def test_each_filter_has_mean_0_variance_1_whatever_its_scale_and_offset(seed, a, c):
    w = np.random.default_rng(seed).normal(size=(4, 3, 3, 3))  # (F, C, HH, WW)
    ws = weight_standardize(w, eps=0.0)
    flat = ws.reshape(4, -1)
    np.testing.assert_allclose(flat.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(flat.var(axis=1), 1.0, rtol=1e-10)
    np.testing.assert_allclose(weight_standardize(a * w + c, eps=0.0), ws, atol=1e-9)


def test_a_standardised_convolution_ignores_the_filter_scale():
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(2, 3, 6, 6)), rng.normal(size=(4, 3, 3, 3))
    p = {"stride": 1, "pad": 1}
    out, _ = conv_forward(x, weight_standardize(w, eps=0.0), np.zeros(4), p)
    out_scaled, _ = conv_forward(x, weight_standardize(7.0 * w + 2.0, eps=0.0), np.zeros(4), p)
    np.testing.assert_allclose(out, out_scaled, atol=1e-10)


def test_the_gn_ws_claims_hold_on_the_digits():
    from course.claims import assert_all_hold
    from course.experiments import digits
    from course.weight_standardization import claims, invariances

    assert_all_hold(claims(invariances(digits().X_train[:64].reshape(64, 1, 8, 8))))
