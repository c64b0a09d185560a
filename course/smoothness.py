"""The smoothness view of BN (Santurkar et al., 2018): along the training path, how much the loss
and its gradient change when stepping along the gradient, with and without BN."""

import numpy as np

from course.experiments import digits
from course.layers import softmax_loss
from course.mlp import MLP
from course.optim import SGD
from course.train import train

DEEP_RELU = (64,) + (64,) * 8 + (10,)  # eight hidden ReLU layers
STEP_MULTIPLES = (0.25, 0.5, 1.0, 2.0, 4.0)  # step sizes as multiples of the learning rate


def loss_and_grad(model, X, y):
    """Loss and flat gradient on a fixed batch, BN with that batch's statistics, buffers frozen."""
    with model.predicting("batch"):
        loss, dscores = softmax_loss(model.forward(X), y)  # dscores (N, C)
        model.backward(dscores)
    return loss, np.concatenate([g.ravel() for _, _, g in model.params()])  # (P,)


def _shift(model, delta):
    """Add the flat vector delta to the model's parameters in place."""
    k = 0
    for _, v, _ in model.params():
        v += delta[k:k + v.size].reshape(v.shape)
        k += v.size


def probe(model, X, y, etas):
    """Loss L(w - eta g) and gradient change |grad(w - eta g) - g| for each eta, and the
    effective smoothness max_eta change / (eta |g|); the model ends where it started."""
    loss0, g = loss_and_grad(model, X, y)  # g (P,)
    losses, changes = [], []
    for eta in etas:
        _shift(model, -eta * g)
        loss, g_eta = loss_and_grad(model, X, y)
        _shift(model, eta * g)  # back to w
        losses.append(loss)
        changes.append(np.linalg.norm(g_eta - g))
    changes = np.array(changes)  # (E,)
    beta = float(np.max(changes / (np.asarray(etas) * np.linalg.norm(g))))
    return {"loss0": loss0, "losses": np.array(losses), "grad_change": changes, "beta": beta}


def landscape(batchnorm, seed=0, sizes=DEEP_RELU, lr=0.05, epochs=4, probe_size=256,
              multiples=STEP_MULTIPLES):
    """Probe at initialisation and after each epoch of training; arrays of shape (epochs + 1, E)
    for the loss range max-min of L(w - eta g) over the etas up to each one, the gradient change,
    plus beta (epochs + 1,) and the final validation accuracy."""
    d = digits()
    X, y = d.X_train[:probe_size], d.y_train[:probe_size]  # the same fixed batch every time
    model = MLP(sizes, batchnorm=batchnorm, seed=seed)
    opt, etas = SGD(lr), lr * np.asarray(multiples)
    probes, val = [probe(model, X, y, etas)], None
    for e in range(epochs):
        val = train(model, d.X_train, d.y_train, d.X_val, d.y_val, opt, epochs=1,
                    seed=seed * 100 + e).val_acc[-1]
        probes.append(probe(model, X, y, etas))
    return {"loss_spread": np.array([np.ptp(p["losses"]) for p in probes]),
            "losses": np.array([p["losses"] for p in probes]),
            "grad_change": np.array([p["grad_change"] for p in probes]),
            "beta": np.array([p["beta"] for p in probes]), "val_acc": val, "etas": etas}


def compare(seeds=range(5), **kw):
    """landscape() without and with BN for each seed: {bn: list of results}."""
    return {bn: [landscape(bn, s, **kw) for s in seeds] for bn in (False, True)}
