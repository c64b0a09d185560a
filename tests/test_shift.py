"""course.shift: shifted digits, AdaBN recalibration, fine-tuning with statistics moving or not."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from course.experiments import digits
from course.shift import adabn, fine_tune_compare, shift


@settings(max_examples=20, deadline=None)
@given(st.floats(0.2, 3.0))
def test_contrast_scales_the_raw_pixels(c):
    X = digits().X_val[:20]
    mu = shift(X, 0.0)  # contrast 0: every image becomes black (raw 0)
    Xs = shift(X, c)
    assert np.allclose(Xs - mu, c * (X - mu))


def test_no_shift_is_the_identity():
    X = digits().X_val[:20]
    assert np.allclose(shift(X), X)


def test_adabn_recovers_the_accuracy_lost_to_lower_contrast():
    r = adabn({"c": dict(contrast=0.5)}, seeds=range(2))["c"]  # (seeds, [clean, shifted, adabn])
    assert (r[:, 1] < r[:, 0] - 0.05).all() and (r[:, 2] > r[:, 1] + 0.05).all()


def test_fine_tuning_with_updated_statistics_beats_frozen():
    r = fine_tune_compare(dict(contrast=0.5), seeds=range(2))  # (seeds, [before, updated, frozen])
    assert (r[:, 1] > r[:, 2] + 0.05).all()
