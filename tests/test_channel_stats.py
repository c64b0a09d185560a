"""course.channel_stats: running estimates of spatial BN approach the population statistics."""

import numpy as np

from course.channel_stats import running_estimate_errors


def test_running_estimates_decay_like_momentum_then_sit_at_batch_noise():
    rng = np.random.default_rng(0)
    feats = rng.normal(5.0, 2.0, (320, 3, 4, 4)) * np.array([1.0, 3.0, 0.5])[None, :, None, None]
    mean_err, var_err, mean, var = running_estimate_errors(feats, steps=120, batch_size=32)
    assert mean_err.shape == var_err.shape == (120,)
    np.testing.assert_allclose(mean, feats.mean(axis=(0, 2, 3)))
    # After one step the running mean is 0.1 x the batch mean: about 0.9 x the initial error.
    assert abs(mean_err[0] / np.abs(mean).max() - 0.9) < 0.05
    assert np.median(mean_err[80:]) < 0.05 * np.abs(mean).max() and np.median(var_err[80:]) < 0.1
