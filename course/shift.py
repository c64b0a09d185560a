"""Shifted digits: BN's training statistics on data that moved, re-estimated on the new data
(AdaBN), and fine-tuning on a little shifted data with the statistics updated or frozen."""

import copy
from functools import cache

import numpy as np

from course.dataset import load_digits
from course.experiments import digits, run
from course.optim import SGD
from course.running_stats import recalibrate
from course.train import accuracy, train


@cache
def _pixel_stats():
    """Mean and standard deviation (64,) of the raw training pixels (the standardisation)."""
    X = load_digits().X_train  # (N, 64)
    return X.mean(axis=0), X.std(axis=0) + 1e-8


def shift(X_std, contrast=1.0, brightness=0.0, noise=0.0, seed=0):
    """Standardised digits shifted in raw pixel units (0..16): pixels * contrast + brightness
    + Gaussian noise, then standardised with the TRAINING statistics, as a deployed model would."""
    mu, sd = _pixel_stats()  # (64,), (64,)
    raw = X_std * sd + mu  # (N, 64)
    raw = raw * contrast + brightness + noise * np.random.default_rng(seed).normal(size=raw.shape)
    return (raw - mu) / sd  # (N, 64)


@cache
def trained(seed, epochs=5):
    """A BN MLP trained on the clean digits (cached: the experiments below only use copies)."""
    return run(True, epochs=epochs, seed=seed)[0]


SHIFTS = {"contrast x0.5": dict(contrast=0.5), "contrast x0.25": dict(contrast=0.25)}


def adabn(shift_kw, seeds=range(5), epochs=5):
    """Per shift and seed, validation accuracy of a trained BN MLP: clean, shifted with the
    training statistics, shifted after recalibrating BN on the shifted training inputs (no
    labels): {shift name: array (seeds, 3)}."""
    d = digits()
    out = {}
    for name, kw in shift_kw.items():
        Xs_train, Xs_val = shift(d.X_train, **kw, seed=1), shift(d.X_val, **kw, seed=2)
        rows = []
        for s in seeds:
            model = trained(s, epochs)
            adapted = recalibrate(copy.deepcopy(model), Xs_train)
            rows.append([accuracy(model, d.X_val, d.y_val), accuracy(model, Xs_val, d.y_val),
                         accuracy(adapted, Xs_val, d.y_val)])
        out[name] = np.array(rows)  # (seeds, 3)
    return out


def fine_tune(model, X, y, X_val, y_val, frozen, epochs=3, batch_size=8, lr=0.01, seed=0):
    """Fine-tune a copy of model on (X, y) in small batches; frozen=True normalises with batch
    statistics but leaves the running buffers as they were. Returns validation accuracy."""
    model = copy.deepcopy(model)
    opt = SGD(lr)
    for e in range(epochs):
        for bn in model.bn:  # set per epoch: predicting() (accuracy) resets the flag
            if bn is not None:
                bn.frozen = frozen
        train(model, X, y, X_val[:1], y_val[:1], opt, epochs=1, batch_size=batch_size,
              seed=seed * 10 + e)
    return accuracy(model, X_val, y_val)


def fine_tune_compare(shift_kw, n_labelled=64, seeds=range(5), **kw):
    """Per seed, shifted validation accuracy before and after fine-tuning on n_labelled shifted
    training examples, statistics updated vs frozen: array (seeds, 3)."""
    d = digits()
    Xs, Xs_val = shift(d.X_train[:n_labelled], **shift_kw, seed=1), shift(d.X_val, **shift_kw,
                                                                            seed=2)
    rows = []
    for s in seeds:
        model = trained(s)
        rows.append([accuracy(model, Xs_val, d.y_val)] +
                    [fine_tune(model, Xs, d.y_train[:n_labelled], Xs_val, d.y_val, fr, seed=s,
                               **kw) for fr in (False, True)])
    return np.array(rows)
