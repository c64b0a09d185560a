"""course.norm_choice: what each preprocessing step depends on, and when layer norm fails."""

import numpy as np

from course.claims import assert_all_hold
from course.dataset import load_digits
from course.norm_choice import (
    STEPS,
    dependence_claims,
    dependence_table,
    failure_claims,
    level_classes,
    tinted_digits,
    two_features,
)


def test_the_dependence_claims_hold_on_tinted_digits():
    table = dependence_table(tinted_digits(load_digits().images("train")[:64, 0]))
    assert set(table) == set(STEPS)
    assert_all_hold(dependence_claims(table))


def test_a_batch_statistic_is_caught_as_depending_on_other_images():
    rgb = tinted_digits(load_digits().images("train")[:16, 0])
    table = dependence_table(rgb)
    wrong = {**table, "(b) each image sums to 1": table["(c) minus the mean image"]}
    assert not dependence_claims(wrong)[1].holds


def test_the_layernorm_failure_claims_hold():
    assert_all_hold(failure_claims(two_features(), level_classes()))
    assert set(np.sign(two_features()).sum(axis=1)) == {0.0}  # always one +1 and one -1
