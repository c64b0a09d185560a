"""Mini-batch training loop shared by every experiment in the course."""

from dataclasses import dataclass, field

import numpy as np

from course.layers import softmax_loss


@dataclass
class History:
    """What a training run measured: loss per step, accuracies per epoch."""

    loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)


def accuracy(model, X, y, batch_size=500, statistics="running", order=None):
    """Fraction of correct predictions, batch_size examples at a time in the given order.

    statistics="running" is test mode; "batch" normalises each batch with its own statistics, as
    a model left in train mode would (buffers untouched). With batch statistics every batch
    holds exactly batch_size examples: the last one is filled up from the start of the order and
    only its new examples count, so no statistics come from a smaller remainder.
    """
    order = np.arange(len(y)) if order is None else np.asarray(order)  # (N,)
    correct = 0
    with model.predicting(statistics):
        for start in range(0, len(y), batch_size):
            stop = start + batch_size
            idx = (np.take(order, np.arange(start, stop), mode="wrap") if statistics == "batch"
                   else order[start:stop])  # (B,)
            keep = min(batch_size, len(y) - start)
            pred = model.forward(X[idx]).argmax(axis=1)[:keep]  # (keep,)
            correct += int((pred == y[idx[:keep]]).sum())
    return correct / len(y)


def train(model, X, y, X_val, y_val, optimizer, epochs=5, batch_size=64, seed=0, after_step=None):
    """Train model with optimizer on (X, y); return a History. Deterministic for a seed.
    after_step(model, step) runs after every optimizer step (a probe must leave the model as is)."""
    rng = np.random.default_rng(seed)
    hist = History()
    N = len(y)
    for _ in range(epochs):
        model.train()
        order = rng.permutation(N)
        # Drop the last partial batch: a batch of one has no batch statistics for BN.
        for start in range(0, N - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            scores = model.forward(X[idx])  # (B, C)
            loss, dscores = softmax_loss(scores, y[idx])
            model.backward(dscores)
            optimizer.step(model.params())
            hist.loss.append(loss)
            if after_step is not None:
                after_step(model, len(hist.loss))
        hist.train_acc.append(accuracy(model, X, y))
        hist.val_acc.append(accuracy(model, X_val, y_val))
    return hist
