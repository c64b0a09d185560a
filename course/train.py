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


def accuracy(model, X, y, batch_size=500):
    """Fraction of correct predictions in evaluation mode (BN uses running statistics)."""
    was_training = model.training
    model.eval()
    correct = 0
    for start in range(0, len(y), batch_size):
        scores = model.forward(X[start:start + batch_size])  # (B, C)
        correct += int((scores.argmax(axis=1) == y[start:start + batch_size]).sum())
    model.train(was_training)
    return correct / len(y)


def train(model, X, y, X_val, y_val, optimizer, epochs=5, batch_size=64, seed=0, progress=False):
    """Train model with optimizer on (X, y); return a History. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    hist = History()
    N = len(y)
    for epoch in range(epochs):
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
        hist.train_acc.append(accuracy(model, X, y))
        hist.val_acc.append(accuracy(model, X_val, y_val))
        if progress:
            print(f"\repoch {epoch + 1}/{epochs}  loss {np.mean(hist.loss[-10:]):.3f}  "
                  f"val acc {hist.val_acc[-1]:.3f}", end="\n" if epoch + 1 == epochs else "")
    return hist
