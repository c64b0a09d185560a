"""course.pruning: prune the smallest weights, and what recalibrating the statistics wins back."""

import numpy as np

from course.claims import assert_all_hold
from course.mlp import MLP
from course.pruning import claims, prune, prune_and_recalibrate


def test_prune_zeroes_the_smallest_hidden_weights_only():
    m = MLP((6, 10, 10, 3), batchnorm=True, seed=0)
    classifier = m.W[-1].copy()
    prune(m, 0.7)
    for W in m.W[:-1]:
        assert 0.65 <= np.mean(W == 0) <= 0.75
    np.testing.assert_array_equal(m.W[-1], classifier)


def test_the_recalibration_claim_holds():
    acc, model = prune_and_recalibrate()
    assert acc.shape == (3, 3) and model.bn[0] is not None
    assert_all_hold(claims(acc))
