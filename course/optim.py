"""Optimizers that update a model's (name, value, grad) parameter list in place."""

import numpy as np


class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum."""

    def __init__(self, lr=0.1, momentum=0.9):
        self.lr, self.momentum = lr, momentum
        self.velocity = None  # one array per parameter, in the order params() lists them

    def step(self, params):
        """Update every parameter value in place from its gradient."""
        if self.velocity is None:
            self.velocity = [np.zeros_like(v) for _, v, _ in params]
        for vel, (_, value, grad) in zip(self.velocity, params, strict=True):
            vel *= self.momentum
            vel -= self.lr * grad
            value += vel
