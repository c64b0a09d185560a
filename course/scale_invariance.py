"""Scale invariance of a layer followed by BN, and what it means for weight decay: the weights'
norm and the effective learning rate lr / ||W||^2 (notebook 07)."""

from functools import cache

import numpy as np

from course.batchnorm import batchnorm_backward, batchnorm_forward
from course.claims import Claim
from course.experiments import digits
from course.layers import relu_backward, relu_forward, softmax_loss
from course.optim import SGD


def readout(H=32, C=10, seed=0):
    """A fixed random readout (H, C): only the layer before BN is trained, so the whole loss is
    invariant to the scale of its weights."""
    return np.random.default_rng(seed).normal(0.0, 1.0 / np.sqrt(H), (H, C))  # (H, C)


def loss_and_grad(W, X, y, V, eps=1e-5):
    """Loss and dL/dW of x -> x W -> BN (gamma 1, beta 0) -> ReLU -> V -> softmax."""
    H = W.shape[1]
    z = X @ W  # (N, H)
    zn, cache_bn = batchnorm_forward(z, np.ones(H), np.zeros(H), {"mode": "train", "eps": eps})
    h, cache_relu = relu_forward(zn)  # (N, H)
    loss, dscores = softmax_loss(h @ V, y)  # dscores (N, C)
    dz, _, _ = batchnorm_backward(relu_backward(dscores @ V.T, cache_relu), cache_bn)  # (N, H)
    return loss, X.T @ dz  # (D, H)


def sgd_norms(lr, weight_decay, steps=200, batch_size=64, H=32, seed=0):
    """Plain SGD (no momentum) with L2 weight decay on the BN-normalised layer, from ||W|| = 1:
    ||W|| and the effective learning rate lr / ||W||^2 before the first step and after every
    step, each (steps + 1,)."""
    d = digits()
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d.X_train.shape[1], H))  # (D, H)
    W /= np.linalg.norm(W)  # the scale is irrelevant to the loss: start every run at norm 1
    V = readout(H, seed=seed)
    opt = SGD(lr, momentum=0.0, weight_decay=weight_decay)  # plain SGD: the theory's setting
    norms = np.empty(steps + 1)  # (steps + 1,)
    norms[0] = 1.0
    for t in range(1, steps + 1):
        idx = rng.integers(0, len(d.X_train), batch_size)  # (B,)
        _, g = loss_and_grad(W, d.X_train[idx], d.y_train[idx], V)
        opt.step([("W", W, g)])  # W -= lr * (g + weight_decay * W), in place
        norms[t] = np.linalg.norm(W)
    return norms, lr / norms**2


LEARNING_RATES = (0.05, 0.1, 0.2, 0.5, 1.0)
WEIGHT_DECAYS = (0.0, 0.001, 0.003, 0.01, 0.03)


@cache
def norm_grid():
    """sgd_norms (seed 0) for every pair of LEARNING_RATES x WEIGHT_DECAYS, computed once, so a
    demo redraw only looks its curves up: {(lr, wd): (norms, effective_lr)}."""
    return {(lr, wd): sgd_norms(lr, wd) for lr in LEARNING_RATES for wd in WEIGHT_DECAYS}


def scale_identities(W, X, y, V, a, eps=1e-5):
    """What scaling W by a > 0 changes: max |BN(X aW) - BN(X W)|, ||dL/d(aW)|| / ||dL/dW||, and
    the cosine between W and dL/dW (0 when the gradient is orthogonal to the weights)."""
    H = W.shape[1]

    def bn(Wx):
        return batchnorm_forward(X @ Wx, np.ones(H), np.zeros(H), {"mode": "train", "eps": eps})[0]
    _, g = loss_and_grad(W, X, y, V, eps)
    _, g_a = loss_and_grad(a * W, X, y, V, eps)
    cosine = np.sum(W * g) / (np.linalg.norm(W) * np.linalg.norm(g))
    return np.abs(bn(a * W) - bn(W)).max(), np.linalg.norm(g_a) / np.linalg.norm(g), cosine


def identities(W, X, y, V, scales=(0.1, 10.0), epsilons=(0.0, 1e-5)):
    """scale_identities for each eps and a: {(eps, a): (max |BN difference|, gradient ratio,
    cosine)}."""
    return {(eps, a): scale_identities(W, X, y, V, a, eps=eps) for eps in epsilons for a in scales}


def norm_runs(lr=0.5, weight_decays=(0.0, 0.01, 0.03), seeds=(0, 1, 2)):
    """sgd_norms per weight decay and seed: {wd: (norms (seeds, steps + 1), effective lr)}."""
    out = {}
    for wd in weight_decays:
        runs = [sgd_norms(lr, wd, seed=s) for s in seeds]
        out[wd] = np.array([r[0] for r in runs]), np.array([r[1] for r in runs])
    return out


def claims(ident, runs):
    """What the identities and the SGD runs show; from identities() and norm_runs()."""
    exact = [v for (eps, a), v in ident.items() if eps == 0.0]
    largest = max(runs)
    plain, decayed = runs[0.0], runs[largest]
    tail = decayed[0][:, -50:]  # (seeds, 50) the last 50 steps
    n = len(plain[0])
    return [
        Claim("with ε = 0 the three identities hold to rounding: BN(x aW) = BN(x W), the gradient "
              "scales as 1/a, and it is orthogonal to W",
              all(d < 1e-12 and abs(r * a - 1) < 1e-9 and abs(c) < 1e-12
                  for (d, r, c), a in zip(exact, [a for (e, a) in ident if e == 0.0], strict=True)),
              {"largest BN difference": max(v[0] for v in exact),
               "largest |cos|": max(abs(v[2]) for v in exact)}),
        Claim("without weight decay the norm never shrinks",
              (np.diff(plain[0], axis=1) > -1e-9).all(),
              {"||W|| after 200 steps": plain[0][:, -1].mean()}, f"{n} seeds, plain SGD, lr 0.5"),
        Claim(f"with weight decay {largest:g} the effective learning rate ends over twice as high, "
              "every seed", decayed[1][:, -1].min() > 2 * plain[1][:, -1].max(),
              {"with decay": decayed[1][:, -1].mean(), "without": plain[1][:, -1].mean()},
              f"{n} seeds, 200 steps"),
        Claim("with weight decay the norm settles: it moves by under 10 % over the last 50 steps",
              (tail.max(axis=1) / tail.min(axis=1) < 1.1).all(),
              {"largest max/min": float((tail.max(axis=1) / tail.min(axis=1)).max())},
              f"{n} seeds, weight decay {largest:g}"),
    ]
