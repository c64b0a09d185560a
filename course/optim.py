"""Optimizers that update a model's (name, value, grad) parameter list in place."""

import numpy as np


class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum and optional L2 weight decay."""

    def __init__(self, lr=0.1, momentum=0.9, weight_decay=0.0):
        # weight_decay adds weight_decay * value to each gradient (the gradient of an L2 term
        # weight_decay/2 * ||value||^2); 0 leaves the update exactly as before.
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocity = None  # one array per parameter, in the order params() lists them

    def step(self, params):
        """Update every parameter value in place from its gradient."""
        if self.velocity is None:
            self.velocity = [np.zeros_like(v) for _, v, _ in params]
        for vel, (_, value, grad) in zip(self.velocity, params, strict=True):
            vel *= self.momentum
            vel -= self.lr * (grad + self.weight_decay * value if self.weight_decay else grad)
            value += vel
