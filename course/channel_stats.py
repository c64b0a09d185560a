"""Per-channel statistics of convolutional features (notebook 05): what spatial BN normalises, and
how its running estimates approach the statistics of the whole training set."""

import numpy as np

from course.norms import spatial_batchnorm_forward


def running_estimate_errors(feats, steps=150, batch_size=32, momentum=0.9, seed=0):
    """Feed mini-batches of feats (N, C, H, W) through spatial BN in train mode (a fresh shuffle
    every epoch) and record after each step the largest |running mean - population mean| and
    |running var / population var - 1| over the channels: two arrays (steps,), plus the
    population mean and variance (C,)."""
    C = feats.shape[1]
    mean, var = feats.mean(axis=(0, 2, 3)), feats.var(axis=(0, 2, 3))  # (C,), (C,)
    bn_param, rng = {"mode": "train", "momentum": momentum}, np.random.default_rng(seed)
    per_epoch = len(feats) // batch_size  # full batches per pass
    epochs = -(-steps // per_epoch)
    order = np.concatenate([rng.permutation(len(feats))[:batch_size * per_epoch]
                            for _ in range(epochs)])
    mean_err, var_err = np.empty(steps), np.empty(steps)
    for t in range(steps):
        batch = feats[order[batch_size * t:batch_size * (t + 1)]]  # (B, C, H, W)
        spatial_batchnorm_forward(batch, np.ones(C), np.zeros(C), bn_param)
        mean_err[t] = np.abs(bn_param["running_mean"] - mean).max()
        var_err[t] = np.abs(bn_param["running_var"] / var - 1).max()
    return mean_err, var_err, mean, var
