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


class Adam:
    """Adam: per-parameter step sizes from running moments of the gradient."""

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = self.v = None
        self.t = 0

    def step(self, params):
        """Update every parameter value in place from its gradient."""
        if self.m is None:
            self.m = [np.zeros_like(v) for _, v, _ in params]
            self.v = [np.zeros_like(v) for _, v, _ in params]
        self.t += 1
        for m, v, (_, value, grad) in zip(self.m, self.v, params, strict=True):
            m += (1 - self.beta1) * (grad - m)
            v += (1 - self.beta2) * (grad**2 - v)
            # Bias correction: m and v start at zero, so early averages are too small.
            m_hat = m / (1 - self.beta1**self.t)
            v_hat = v / (1 - self.beta2**self.t)
            value -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
