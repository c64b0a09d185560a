"""course.shift: shifted digits, AdaBN recalibration, fine-tuning with statistics moving or not."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course.claims import assert_all_hold
from course.experiments import digits
from course.shift import (
    SHIFTS,
    adabn,
    claims,
    fine_tune,
    fine_tune_compare,
    freeze_bn,
    shift,
    trained,
)


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


def test_per_pixel_contrast_scales_each_pixel_by_its_factor():
    X = digits().X_val[:20]
    a = SHIFTS["per-pixel contrast U(0.25, 1)"]["contrast"]  # (64,)
    black = shift(X, 0.0)
    assert np.allclose(shift(X, a) - black, a * (X - black))


def test_frozen_bn_stays_in_inference_mode_while_fine_tuning():
    d = digits()
    model = trained(0)
    before = [(bn.running_mean.copy(), bn.running_var.copy()) for bn in model.bn if bn is not None]
    # lr 0: nothing learns, so inference-mode BN must give exactly the model's test accuracy,
    # while the mismatched variant (batch statistics) is trained but also tested in test mode.
    acc = fine_tune(model, d.X_train[:64], d.y_train[:64], d.X_val, d.y_val,
                    "frozen (inference mode)", lr=0.0)
    from course.train import accuracy
    assert acc == accuracy(model, d.X_val, d.y_val)
    after = [(bn.running_mean, bn.running_var) for bn in model.bn if bn is not None]
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(before, after, strict=True))  # the original is untouched


def test_unknown_bn_mode_is_refused_by_name():
    d = digits()
    with pytest.raises(ValueError, match="bn_mode must be one of"):
        fine_tune(trained(0), d.X_train[:8], d.y_train[:8], d.X_val, d.y_val, "frozen")


def test_the_shift_claims_hold():
    shifted = adabn(SHIFTS, seeds=range(5))
    tuned = fine_tune_compare(SHIFTS["uniform contrast x0.5"], seeds=range(5))
    assert_all_hold(claims(shifted, tuned))


def test_frozen_bn_is_a_fixed_affine_map_while_training():
    import copy

    from course.optim import SGD
    from course.train import train

    d = digits()
    model = freeze_bn(copy.deepcopy(trained(0)))
    assert not any("gamma" in n or "beta" in n for n, _, _ in model.params())
    bns = [bn for bn in model.bn if bn is not None]
    before = [(bn.gamma.copy(), bn.running_var.copy()) for bn in bns]
    train(model, d.X_train[:64], d.y_train[:64], d.X_val[:8], d.y_val[:8], SGD(0.05), epochs=2,
          batch_size=8)
    assert all(not bn.training for bn in bns)  # train() did not switch them back
    for bn, (gamma, var) in zip(bns, before, strict=True):
        np.testing.assert_array_equal(bn.gamma, gamma)
        np.testing.assert_array_equal(bn.running_var, var)
