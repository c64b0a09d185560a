"""Which statistics a preprocessing step or a normalisation depends on, and when layer norm works
badly (notebook 05; the questions are cs231n assignment 2's inline questions, answered here by
computation)."""

import numpy as np

from course.batchnorm import batchnorm_forward
from course.claims import Claim
from course.norms import layernorm_forward

# Four preprocessing steps for colour images x (N, 3, H, W).
STEPS = {
    "(a) each row sums to 1": lambda x: x / x.sum(axis=(1, 3), keepdims=True),
    "(b) each image sums to 1": lambda x: x / x.sum(axis=(1, 2, 3), keepdims=True),
    "(c) minus the mean image": lambda x: x - x.mean(axis=0, keepdims=True),
    "(d) threshold at 8": lambda x: (x > 8).astype(float),
}


def _other_images(x):
    x[1:] *= 1.5


def _same_row(x):
    x[0, :, 0, 5] += 3.0  # image 0, row 0 (the probed pixel's row), another column


def _other_row(x):
    x[0, :, 7, 5] += 3.0  # image 0, another row


EDITS = {"other images": _other_images, "same row": _same_row, "other rows": _other_row}


def tinted_digits(images, seed=0):
    """Colour images (N, 3, 8, 8) from grey digits (N, 8, 8): +1 (so no row sums to zero), then
    one random tint per image and colour."""
    gray = 1.0 + images  # (N, 8, 8)
    return gray[:, None] * np.random.default_rng(seed).uniform(0.2, 1.0, (len(images), 3, 1, 1))


def dependence_table(rgb):
    """For each step and edit: does pixel (image 0, red, row 0, column 0) of the output move?"""
    def moves(step, edit):
        x2 = rgb.copy()
        edit(x2)
        return not np.isclose(step(rgb)[0, 0, 0, 0], step(x2)[0, 0, 0, 0])
    return {name: {e: moves(step, edit) for e, edit in EDITS.items()}
            for name, step in STEPS.items()}


def dependence_claims(table):
    """Which step is like BN (statistics over the images), which like LN (over one image)."""
    def row(name):
        return tuple(table[name].values())  # (other images, same row, other rows)
    return [
        Claim("(c) depends on the other images only: like batch norm",
              row("(c) minus the mean image") == (True, False, False)),
        Claim("(b) depends on all of the image's own pixels and on no other image: like layer norm",
              row("(b) each image sums to 1") == (False, True, True)),
        Claim("(a) depends on its own row only: per example, over a region",
              row("(a) each row sums to 1") == (False, True, False)),
        Claim("(d) depends on nothing but its own value", row("(d) threshold at 8")
              == (False, False, False)),
    ]


def two_features(n=6, seed=0):
    """Layer norm (gamma 1, beta 0) of n random examples with D = 2 features: (n, 2)."""
    x = np.random.default_rng(seed).normal(0.0, 5.0, (n, 2))
    return layernorm_forward(x, np.ones(2), np.zeros(2), {})[0]


def nearest_mean_accuracy(feats, y):
    """Train on the first half, test on the second, with one mean vector per class."""
    half = len(y) // 2
    tr, te = slice(0, half), slice(half, len(y))
    means = np.stack([feats[tr][y[tr] == k].mean(axis=0) for k in (0, 1)])  # (2, D)
    pred = ((feats[te, None, :] - means) ** 2).sum(axis=2).argmin(axis=1)
    return float((pred == y[te]).mean())


def level_classes(n=400, D=16, seed=0):
    """Two classes that differ only by overall level (class 1 is every feature + 1): the
    nearest-class-mean accuracy on raw, batch-normalised and layer-normalised features."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(0.0, 1.0, (n, D)) + 1.0 * y[:, None]  # (n, D)
    ones, zeros = np.ones(D), np.zeros(D)
    bn = batchnorm_forward(x, ones, zeros, {"mode": "train"})[0]  # (n, D)
    ln = layernorm_forward(x, ones, zeros, {})[0]  # (n, D)
    return {"raw": nearest_mean_accuracy(x, y), "batch norm": nearest_mean_accuracy(bn, y),
            "layer norm": nearest_mean_accuracy(ln, y)}


def failure_claims(d2, levels):
    """When layer norm works badly; from two_features and level_classes."""
    return [
        Claim("with D = 2 layer norm leaves only ±1 (the order of the two values)",
              np.allclose(np.abs(d2), 1.0, atol=1e-4),
              {"largest ||x̂| - 1|": float(np.abs(np.abs(d2) - 1).max())}),
        Claim("when the class is the overall level, layer norm erases it (chance) and batch norm "
              "keeps it", abs(levels["layer norm"] - 0.5) < 0.1 and levels["batch norm"] > 0.9,
              levels),
    ]
