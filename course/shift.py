"""Shifted digits: BN's training statistics on data that moved, re-estimated on the new data
(AdaBN), and fine-tuning on a little shifted data with BN's statistics updated, frozen (inference
mode, what Keras' trainable=False and torchvision's FrozenBatchNorm2d mean), or neither."""

import copy
from functools import cache

import numpy as np

from course.claims import Claim
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
    + Gaussian noise, then standardised with the TRAINING statistics, as a deployed model would.
    contrast may be one number (uniform) or one per pixel (64,)."""
    mu, sd = _pixel_stats()  # (64,), (64,)
    raw = X_std * sd + mu  # (N, 64)
    raw = raw * contrast + brightness + noise * np.random.default_rng(seed).normal(size=raw.shape)
    return (raw - mu) / sd  # (N, 64)


@cache
def trained(seed, epochs=5):
    """A BN MLP trained on the clean digits (cached: the experiments below only use copies)."""
    return run(True, epochs=epochs, seed=seed)[0]


# A uniform contrast change multiplies every pixel by one factor; a per-pixel one by 64 factors.
SHIFTS = {"uniform contrast x0.5": dict(contrast=0.5),
          "per-pixel contrast U(0.25, 1)": dict(
              contrast=np.random.default_rng(0).uniform(0.25, 1.0, 64))}


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


# How BN behaves while fine-tuning: the framework meaning of "frozen" is inference mode.
BN_MODES = ("statistics updated", "frozen (inference mode)", "batch statistics, buffers kept")


def freeze_bn(model):
    """BN frozen as the frameworks mean it, in place: inference mode (running statistics, never
    updated) with gamma and beta fixed, a fixed affine map whatever train() and eval() do."""
    for bn in model.bn:
        if bn is not None:
            bn.training = False
            bn.params = list  # no learnable arrays: gamma and beta stay as they are
    model.mode_layers = list  # train() and eval() no longer switch BN
    return model


def fine_tune(model, X, y, X_val, y_val, bn_mode, epochs=3, batch_size=8, lr=0.01, seed=0):
    """Fine-tune a copy of model on (X, y) in small batches with BN in one of BN_MODES: train mode
    as usual; frozen (freeze_bn: Keras' trainable=False, torchvision's FrozenBatchNorm2d); or
    batch statistics with the running buffers left as they were (trains on one normalisation,
    tests on another). Returns validation accuracy."""
    if bn_mode not in BN_MODES:
        raise ValueError(f"bn_mode must be one of {BN_MODES}, got {bn_mode!r}")
    model = freeze_bn(copy.deepcopy(model)) if bn_mode == "frozen (inference mode)" else \
        copy.deepcopy(model)
    layers = [bn for bn in model.bn if bn is not None]
    opt = SGD(lr)
    for e in range(epochs):
        for bn in layers:  # set per epoch: predicting() (accuracy) resets the flag
            bn.frozen = bn_mode == "batch statistics, buffers kept"
        train(model, X, y, X_val[:1], y_val[:1], opt, epochs=1, batch_size=batch_size,
              seed=seed * 10 + e)
    return accuracy(model, X_val, y_val)


def fine_tune_compare(shift_kw, n_labelled=64, seeds=range(5), **kw):
    """Per seed, shifted validation accuracy before fine-tuning and after fine-tuning on
    n_labelled shifted training examples in each of BN_MODES: array (seeds, 1 + len(BN_MODES))."""
    d = digits()
    Xs, Xs_val = shift(d.X_train[:n_labelled], **shift_kw, seed=1), shift(d.X_val, **shift_kw,
                                                                            seed=2)
    rows = []
    for s in seeds:
        model = trained(s)
        rows.append([accuracy(model, Xs_val, d.y_val)] +
                    [fine_tune(model, Xs, d.y_train[:n_labelled], Xs_val, d.y_val, mode, seed=s,
                               **kw) for mode in BN_MODES])
    return np.array(rows)


def claims(shifted, tuned):
    """What re-estimating and fine-tuning show; shifted from adabn(SHIFTS), tuned from
    fine_tune_compare (uniform contrast x0.5)."""
    uni, pix = shifted["uniform contrast x0.5"], shifted["per-pixel contrast U(0.25, 1)"]
    before, updated, frozen, mixed = tuned.T  # (seeds,) each
    n = len(before)
    return [
        Claim("a uniform contrast change costs accuracy on every seed, and AdaBN gives it back to "
              "within a point",
              (uni[:, 1] < uni[:, 0] - 0.1).all() and (uni[:, 2] > uni[:, 0] - 0.01).all(),
              {"clean": uni[:, 0].mean(), "shifted": uni[:, 1].mean(), "AdaBN": uni[:, 2].mean()},
              f"{n} seeds, pixels x0.5"),
        Claim("a per-pixel contrast change is not fully undone: AdaBN helps but stays below clean "
              "on every seed", (pix[:, 2] > pix[:, 1]).all() and (pix[:, 2] < pix[:, 0]).all(),
              {"clean": pix[:, 0].mean(), "shifted": pix[:, 1].mean(), "AdaBN": pix[:, 2].mean()},
              f"{n} seeds, pixel j x a_j, a_j ~ U(0.25, 1)"),
        Claim("fine-tuning with BN frozen in inference mode recovers most of the loss, with the "
              "statistics updated a little more",
              (frozen - before).mean() > 0.5 * (updated - before).mean()
              and updated.mean() > frozen.mean(),
              {"before": before.mean(), "frozen (inference mode)": frozen.mean(),
               "statistics updated": updated.mean()}, f"{n} seeds, 64 labelled shifted digits"),
        Claim("training on batch statistics while the buffers stay at the clean values barely "
              "moves the test-mode accuracy", abs(mixed.mean() - before.mean()) < 0.03,
              {"before": before.mean(), "batch statistics, buffers kept": mixed.mean()},
              f"{n} seeds, 64 labelled shifted digits"),
    ]
