"""BatchNorm1d: a thin stateful layer around the pure functions in course.batchnorm."""

import numpy as np

from course.batchnorm import (
    DEFAULT_EPS,
    DEFAULT_MOMENTUM,
    batchnorm_backward_alt,
    batchnorm_forward,
)


class BatchNorm1d:
    """Batch normalization over the features of (N, D) inputs."""

    # The pure functions doing the math; a subclass swaps them (e.g. per-channel BN for CNNs).
    forward_fn = staticmethod(batchnorm_forward)
    backward_fn = staticmethod(batchnorm_backward_alt)

    def __init__(self, num_features, eps=DEFAULT_EPS, momentum=DEFAULT_MOMENTUM):
        # Parameters: learned by gradient descent. Initialised so the layer starts as x_hat.
        self.gamma = np.ones(num_features)  # (D,)
        self.beta = np.zeros(num_features)  # (D,)
        # Buffers: not learned by gradients, updated by the running average in train mode.
        self.running_mean = np.zeros(num_features)  # (D,)
        self.running_var = np.ones(num_features)  # (D,)
        self.eps, self.momentum = eps, momentum
        self.training = True
        self.dgamma = self.dbeta = None
        self._cache = None

    def params(self):
        """Learnable arrays and their gradients, as (name, value, grad) triples."""
        return [("gamma", self.gamma, self.dgamma), ("beta", self.beta, self.dbeta)]

    def bn_param(self):
        """The cs231n-style bn_param dict for the current mode, holding this layer's buffers."""
        return {"mode": "train" if self.training else "test", "eps": self.eps,
                "momentum": self.momentum, "running_mean": self.running_mean,
                "running_var": self.running_var}

    def forward(self, x):
        """Normalise x with batch statistics (training) or running statistics (evaluation)."""
        bn_param = self.bn_param()
        out, self._cache = self.forward_fn(x, self.gamma, self.beta, bn_param)  # same shape as x
        self.running_mean, self.running_var = bn_param["running_mean"], bn_param["running_var"]
        return out

    def backward(self, dout):
        """Store dgamma, dbeta and return dx."""
        dx, self.dgamma, self.dbeta = self.backward_fn(dout, self._cache)  # same shape as dout
        return dx

    __call__ = forward
