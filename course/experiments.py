"""Small, fast training experiments on the digits, with and without batch normalization.

Each experiment is a function returning numbers (so tests can assert the effect it shows);
course.figures.experiments draws those numbers. Every run is seeded and takes well under a second.
"""

from functools import cache

import numpy as np

from course.dataset import load_digits
from course.mlp import MLP
from course.optim import SGD
from course.saturation import saturation_fraction
from course.train import accuracy, train

SHALLOW = (64, 64, 64, 10)  # two hidden ReLU layers: the default network of the sweeps
DEEP_SIGMOID = (64, 64, 64, 64, 64, 64, 10)  # five hidden sigmoid layers: hard without BN


@cache
def digits():
    """The standardized digits (loaded once per process)."""
    return load_digits(standardize=True)


def run(batchnorm=True, sizes=SHALLOW, activation="relu", weight_scale=None, lr=0.1,
        batch_size=64, epochs=3, seed=0, make_model=None, weight_decay=0.0):
    """Train one network with SGD (momentum 0.9) on the digits; return (model, History).

    By default the network is an MLP(sizes, activation, batchnorm, weight_scale); make_model(seed)
    builds any other network instead (the MLP arguments are then ignored).
    """
    d = digits()
    model = (MLP(sizes, activation=activation, batchnorm=batchnorm, weight_scale=weight_scale,
                 seed=seed) if make_model is None else make_model(seed))
    hist = train(model, d.X_train, d.y_train, d.X_val, d.y_val, SGD(lr, weight_decay=weight_decay),
                 epochs=epochs, batch_size=batch_size, seed=seed)
    return model, hist


# ----------------------------------------------------------------------------------------------
# Predicting with batch statistics: the deployment bug


def deployment_bug(model, X, y, batch_sizes=(1, 8, 64)):
    """Accuracy in test mode versus train mode with random and single-class (skewed) batches."""
    random_order = np.random.default_rng(0).permutation(len(y))
    by_class = np.argsort(y, kind="stable")  # every batch holds (almost) a single digit
    result = {"test mode": accuracy(model, X, y)}
    for bs in batch_sizes:
        result[f"train mode, random batches of {bs}"] = accuracy(
            model, X, y, bs, statistics="batch", order=random_order)
        if bs > 1:
            result[f"train mode, one-class batches of {bs}"] = accuracy(
                model, X, y, bs, statistics="batch", order=by_class)
    return result


# ----------------------------------------------------------------------------------------------
# Sweeps


def curves(sizes=DEEP_SIGMOID, activation="sigmoid", lr=0.1, epochs=4):
    """Loss per step and validation accuracy per epoch, without and with BN: {bn: History}."""
    return {bn: run(bn, sizes, activation, lr=lr, epochs=epochs)[1] for bn in (False, True)}


SEEDS = (0, 1, 2)  # every sweep point is trained from several seeds, so its spread can be shown


def scaled_lr(batch_size, base_lr=0.1, base_batch=64):
    """The course's one rule for a new batch size (notebooks 04 and 06): the linear scaling rule,
    learning rate proportional to the batch size, base_lr at base_batch."""
    return base_lr * batch_size / base_batch


def sweep(param, values, epochs=2, seeds=SEEDS, **fixed):
    """Final validation accuracy for each value of one run() argument and each seed:
    {bn: array of shape (len(seeds), len(values))}."""
    return {bn: np.array([[run(bn, **{**fixed, param: v}, epochs=epochs, seed=s)[1].val_acc[-1]
                           for v in values] for s in seeds]) for bn in (False, True)}


INIT_SCALES = (0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
LEARNING_RATES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
BATCH_SIZES = (2, 4, 16, 64, 256)


def init_scale_sweep(scales=INIT_SCALES, epochs=2):
    """Validation accuracy against the standard deviation of the initial weights."""
    return sweep("weight_scale", scales, epochs)


def lr_sweep(lrs=LEARNING_RATES, epochs=2):
    """Validation accuracy against the SGD learning rate."""
    return sweep("lr", lrs, epochs)


def batch_size_sweep(batch_sizes=BATCH_SIZES, epochs=2, seeds=SEEDS, base_lr=0.1):
    """Validation accuracy against batch size, each run with scaled_lr(batch size), so every run
    sees the data equally often with the same gradient noise per epoch: {bn: (seeds, sizes)}."""
    return {bn: np.array([[run(bn, lr=scaled_lr(bs, base_lr), batch_size=bs, epochs=epochs,
                               seed=s)[1].val_acc[-1] for bs in batch_sizes] for s in seeds])
            for bn in (False, True)}


def saturation_by_layer(sizes=DEEP_SIGMOID, weight_scale=1.0, epochs=2, lr=0.1):
    """Fraction of saturated sigmoid inputs (|z| > threshold) per hidden layer of a deep sigmoid
    net, at initialisation and after training, without and with BN; plus final accuracy."""
    d = digits()
    out = {}
    for bn in (False, True):
        model = MLP(sizes, activation="sigmoid", batchnorm=bn, weight_scale=weight_scale, seed=0)
        # At initialisation: a training batch, normalised as in train mode (buffers untouched).
        with model.predicting("batch"):
            model.forward(d.X_train[:256])
        z0 = model.preacts
        _, hist = run(make_model=lambda seed, m=model: m, lr=lr, epochs=epochs)  # seed 0, batch 64
        with model.predicting():  # after training: deployment (test) mode on the validation set
            model.forward(d.X_val)
        out[bn] = {"init": np.array([saturation_fraction(z) for z in z0]),
                   "trained": np.array([saturation_fraction(z) for z in model.preacts]),
                   "val_acc": hist.val_acc[-1]}
    return out


def spread(values):
    """'mean ± std [min, max]' of per-seed results: the course's way to print a spread."""
    a = np.asarray(values, dtype=float)
    return f"{a.mean():.3f} ± {a.std():.3f} [{a.min():.3f}, {a.max():.3f}]"
