"""The digits data set and its fixed split."""

import numpy as np

from course.dataset import load_digits, load_raw


def test_dataset_is_the_full_digits_set_with_a_fixed_split():
    X, y = load_raw()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0 and X.max() == 16 and set(np.unique(y)) == set(range(10))
    a, b = load_digits(), load_digits()
    np.testing.assert_array_equal(a.y_val, b.y_val)
    assert len(a.y_train) + len(a.y_val) == 1797 and len(a.y_val) == 359
    s = load_digits(standardize=True)
    np.testing.assert_allclose(s.X_train.mean(axis=0), 0, atol=1e-9)
    assert a.images().shape == (1438, 1, 8, 8)
