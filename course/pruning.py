"""Pruning a trained BN network leaves its running statistics stale; recalibrating them wins back
part of the loss without touching a weight (notebook 06)."""

import copy

import numpy as np

from course.claims import Claim
from course.experiments import digits, run
from course.running_stats import recalibrate
from course.train import accuracy


def prune(model, fraction=0.7):
    """Zero the smallest `fraction` of each hidden weight matrix in place (the classifier is left
    alone); return model."""
    for W in model.W[:-1]:
        W[np.abs(W) < np.quantile(np.abs(W), fraction)] = 0.0
    return model


def prune_and_recalibrate(seeds=(0, 1, 2), fraction=0.7, epochs=5):
    """Per seed, validation accuracy trained, pruned with stale statistics, pruned and
    recalibrated: array (seeds, 3), and the last recalibrated model (for folding)."""
    d, rows = digits(), []
    for seed in seeds:
        m, _ = run(True, lr=0.05, epochs=epochs, seed=seed)
        trained = accuracy(m, d.X_val, d.y_val)
        pruned = prune(copy.deepcopy(m), fraction)
        stale = accuracy(pruned, d.X_val, d.y_val)
        rows.append((trained, stale, accuracy(recalibrate(pruned, d.X_train, batch_size=64),
                                              d.X_val, d.y_val)))
    return np.array(rows), pruned


def claims(acc):
    """What pruning and recalibrating show; acc from prune_and_recalibrate."""
    trained, stale, fixed = acc.T
    recovered = (fixed - stale) / (trained - stale)  # (seeds,)
    return [Claim("pruning with stale statistics costs several points, and recalibrating wins at "
                  "least half of them back on every seed", (trained - stale).min() > 0.03
                  and recovered.min() > 0.5,
                  {"lost": float((trained - stale).mean()),
                   "recovered": ", ".join(f"{r:.0%}" for r in recovered)},
                  f"{len(acc)} seeds, 70 % of each hidden weight matrix pruned")]
