"""Why normalise: how far a deep sigmoid network's units sit into the flat tails of the sigmoid.

A plain MLP (affine -> [standardise] -> sigmoid, repeated, then affine -> softmax) whose weights
are drawn once and multiplied by a scale, so every figure compares the same network.
"""

from functools import cache

import numpy as np

from course.batchnorm import DEFAULT_EPS, batchnorm_backward, batchnorm_forward
from course.dataset import load_digits
from course.layers import (
    affine_backward,
    affine_forward,
    sigmoid_backward,
    sigmoid_forward,
    sigmoid_grad,
    softmax_loss,
)

SATURATION_THRESHOLD = 4.0  # |z| > 4  <=>  sigma'(z) < 0.018, under 1/14 of its maximum 1/4


def saturation_fraction(z, threshold=SATURATION_THRESHOLD):
    """Fraction of all entries of z whose magnitude exceeds the threshold (both tails)."""
    return float(np.mean(np.abs(z) > threshold))


def saturation(z):
    """(fraction of saturated units, mean slope sigma'(z)) for pre-activations z."""
    z = np.asarray(z, dtype=float)
    return saturation_fraction(z), float(np.mean(sigmoid_grad(z)))


def standardized_sample(n=4000, seed=0):
    """A fixed bimodal feature, standardised: two groups that sat on either side of a sigmoid."""
    rng = np.random.default_rng(seed)
    z = np.concatenate([rng.normal(-3.0, 1.0, n // 2), rng.normal(3.0, 1.0, n - n // 2)])  # (n,)
    return (z - z.mean()) / z.std()  # (n,)


def standardize(x, eps=DEFAULT_EPS):
    """Each feature (column) of x shifted to mean 0 and scaled to variance ~1 over the batch."""
    mu = x.mean(axis=0)  # (D,)
    var = x.var(axis=0)  # (D,)  biased (divide by N), as batch normalization does
    return (x - mu) / np.sqrt(var + eps)  # (N, D)


def init_weights(sizes, seed=0):
    """Unit-scale weights N(0, 1/fan_in) for layer sizes [d_in, h, ..., n_classes]."""
    rng = np.random.default_rng(seed)
    shapes = zip(sizes[:-1], sizes[1:], strict=True)
    return [rng.normal(size=(m, n)) / np.sqrt(m) for m, n in shapes]  # (fan_in, fan_out) each


@cache
def demo_data(n=256, depth=6, width=64, seed=0):
    """The fixed batch of standardised digits and the unit-scale weights of notebook 01."""
    d = load_digits(standardize=True)
    weights = init_weights([64] + [width] * depth + [10], seed=seed)
    return d.X_train[:n], d.y_train[:n], weights


def mlp_forward_backward(X, y, weights, scale=1.0, shift=0.0, normalize=False):
    """One forward and backward pass; returns each hidden layer's sigmoid input and gradients.

    Hidden layer l computes z = a @ (scale * W_l) + shift, standardises z per feature if
    `normalize` (batch normalization with gamma = 1, beta = 0), then a = sigmoid(z). `shift` is
    the same bias on every unit: it moves every sigmoid's input off centre.
    """
    a, caches, zs = X, [], []
    for W in weights[:-1]:
        z, aff = affine_forward(a, scale * W, np.full(W.shape[1], shift))  # (N, H)
        bn = None
        if normalize:
            H = W.shape[1]
            z, bn = batchnorm_forward(z, np.ones(H), np.zeros(H), {"mode": "train"})
        zs.append(z)
        a, sig = sigmoid_forward(z)  # (N, H)
        caches.append((aff, bn, sig))
    scores, aff_out = affine_forward(a, scale * weights[-1], np.zeros(weights[-1].shape[1]))
    loss, dscores = softmax_loss(scores, y)

    da, dW_out, _ = affine_backward(dscores, aff_out)
    grads = [dW_out * scale]  # d loss / d W_l, since the layer uses scale * W_l
    for aff, bn, sig in reversed(caches):
        dz = sigmoid_backward(da, sig)  # (N, H)
        if bn is not None:
            dz, _, _ = batchnorm_backward(dz, bn)
        da, dW, _ = affine_backward(dz, aff)
        grads.append(dW * scale)
    grads.reverse()
    grad_norms = np.array([np.linalg.norm(g) for g in grads])  # (L + 1,)
    # Relative to the weights it would update: the size of a gradient step, whatever the scale.
    weight_norms = np.array([np.linalg.norm(scale * W) for W in weights])  # (L + 1,)
    return {"z": zs, "grads": grads, "loss": loss, "grad_norms": grad_norms,
            "rel_grad_norms": grad_norms / weight_norms}


def layer_spread(zs):
    """Per layer, the median over units of each unit's standard deviation over the batch."""
    return np.array([np.median(z.std(axis=0)) for z in zs])  # (L,)


def train_recording(X, y, weights, steps, lr, layer, scale=1.0, normalize=False, batch=128,
                    seed=0):
    """Plain SGD on the weights; returns new weights and `layer`'s sigmoid input after each step.

    The recorded pre-activations are always computed on the same fixed batch X[:batch], so any
    change between steps is caused by the weights moving, not by new data.
    """
    rng = np.random.default_rng(seed)
    weights = [W.copy() for W in weights]
    probe = X[:batch]

    def probe_z():
        return mlp_forward_backward(probe, y[:batch], weights, scale, normalize=normalize)["z"]

    record = [probe_z()[layer]]
    for _ in range(steps):
        idx = rng.choice(len(y), size=batch, replace=False)
        grads = mlp_forward_backward(X[idx], y[idx], weights, scale, normalize=normalize)["grads"]
        weights = [W - lr * g for W, g in zip(weights, grads, strict=True)]
        record.append(probe_z()[layer])
    return weights, record


def linear_r2(x, y):
    """R^2 of the best straight-line fit y ~ a x + b, per column (how linear y is in x)."""
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)  # (N, D)
    slope = (xc * yc).sum(axis=0) / (xc**2).sum(axis=0)  # (D,)
    resid = yc - slope * xc  # (N, D)
    return 1 - (resid**2).sum(axis=0) / (yc**2).sum(axis=0)  # (D,)
