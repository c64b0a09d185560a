"""The course dataset: UCI optical handwritten digits (8x8 images), shipped in the package."""

import gzip
from dataclasses import dataclass
from importlib import resources

import numpy as np

SPLIT_SEED = 0


@dataclass(frozen=True)
class Digits:
    """Train/validation arrays; X as float pixels in [0, 16], y as integer labels 0-9."""

    X_train: np.ndarray  # (N_train, 64)
    y_train: np.ndarray  # (N_train,)
    X_val: np.ndarray  # (N_val, 64)
    y_val: np.ndarray  # (N_val,)

    def images(self, split="train"):
        """The split's inputs as (N, 1, 8, 8) images for convolutional layers."""
        X = self.X_train if split == "train" else self.X_val
        return X.reshape(-1, 1, 8, 8)  # (N, 1, 8, 8)


def load_raw():
    """All 1,797 examples in file order: X (1797, 64) float64 and y (1797,) int64."""
    with resources.files("course.data").joinpath("digits.csv.gz").open("rb") as fh:
        table = np.loadtxt(gzip.open(fh), delimiter=",")  # (1797, 65)
    return table[:, :-1], table[:, -1].astype(np.int64)


def load_digits(val_fraction=0.2, standardize=False):
    """A deterministic shuffled train/validation split of the digits."""
    X, y = load_raw()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(y))
    n_val = int(round(val_fraction * len(y)))
    val, train = order[:n_val], order[n_val:]
    X_train, X_val = X[train], X[val]
    if standardize:
        # Statistics from the training split only, as any honest preprocessing must.
        mu, sd = X_train.mean(axis=0), X_train.std(axis=0) + 1e-8  # (64,)
        X_train, X_val = (X_train - mu) / sd, (X_val - mu) / sd
    return Digits(X_train, y[train], X_val, y[val])
