"""The normalisation layers: thin stateful classes around the pure functions of course.batchnorm
and course.norms (BatchNorm1d, BatchRenorm1d, per-channel SpatialBatchNorm, GroupNorm)."""

import numpy as np

from course.batch_renorm import D_MAX, R_MAX, batch_renorm_backward, batch_renorm_forward
from course.batchnorm import (
    DEFAULT_EPS,
    DEFAULT_MOMENTUM,
    batchnorm_backward_alt,
    batchnorm_forward,
)
from course.norms import (
    KINDS,
    groupnorm_backward,
    groupnorm_forward,
    num_groups,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
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
        # Frozen: in training mode normalise with the batch's statistics but leave the buffers
        # alone (Network.predicting sets it to predict "in train mode" without side effects).
        self.frozen = False
        self.dgamma = self.dbeta = None
        self._cache = None

    def params(self):
        """Learnable arrays and their gradients, as (name, value, grad) triples."""
        return [("gamma", self.gamma, self.dgamma), ("beta", self.beta, self.dbeta)]

    def bn_param(self):
        """The cs231n-style bn_param dict for the current mode, holding this layer's buffers."""
        return {"mode": "train" if self.training else "test", "eps": self.eps,
                "momentum": self.momentum, "running_mean": self.running_mean,
                "running_var": self.running_var, "frozen": self.frozen}

    def forward(self, x):
        """Normalise x with batch statistics (training) or running statistics (evaluation)."""
        if self.training and not self.frozen and x.size // self.gamma.size < 2:  # values per unit
            # The function's own message names its bn_param switch; a layer's switch is its flag.
            raise ValueError("training mode needs at least 2 examples per batch; for one example "
                             "switch the layer to evaluation: layer.training = False")
        bn_param = self.bn_param()
        out, self._cache = self.forward_fn(x, self.gamma, self.beta, bn_param)  # same shape as x
        self.running_mean, self.running_var = bn_param["running_mean"], bn_param["running_var"]
        return out

    def backward(self, dout):
        """Store dgamma, dbeta and return dx."""
        dx, self.dgamma, self.dbeta = self.backward_fn(dout, self._cache)  # same shape as dout
        return dx

    def batch_statistics(self):
        """Mean and biased variance (D,) of the batch seen by the last training-mode forward."""
        return self._cache["mu"], self._cache["var"]

    __call__ = forward


class BatchRenorm1d(BatchNorm1d):
    """Batch Renormalization (notebook 07): BatchNorm1d with r and d corrections clipped to
    [1/r_max, r_max] and [-d_max, d_max]."""

    forward_fn = staticmethod(batch_renorm_forward)
    backward_fn = staticmethod(batch_renorm_backward)

    def __init__(self, num_features, r_max=R_MAX, d_max=D_MAX, **kwargs):
        super().__init__(num_features, **kwargs)
        self.r_max, self.d_max = r_max, d_max

    def bn_param(self):
        """BatchNorm1d's bn_param plus the clipping limits."""
        return {**super().bn_param(), "r_max": self.r_max, "d_max": self.d_max}


class SpatialBatchNorm(BatchNorm1d):
    """Batch norm for (N, C, H, W) feature maps: one gamma/beta and one running pair per channel."""

    forward_fn = staticmethod(spatial_batchnorm_forward)
    backward_fn = staticmethod(spatial_batchnorm_backward)


class GroupNorm:
    """Group norm for (N, C, H, W): per-example statistics; G=1 is LayerNorm, G=C instance norm."""

    def __init__(self, channels, groups, eps=DEFAULT_EPS):
        self.gamma, self.beta = np.ones(channels), np.zeros(channels)  # (C,)
        self.G, self.eps = groups, eps
        # No effect: the same computation in training and evaluation, and no buffers to freeze.
        self.training, self.frozen = True, False
        self.dgamma = self.dbeta = None

    params = BatchNorm1d.params

    def forward(self, x):
        """Normalise each group of channels of each example."""
        out, self._cache = groupnorm_forward(x, self.gamma, self.beta, self.G, {"eps": self.eps})
        return out  # (N, C, H, W)

    def backward(self, dout):
        """Store dgamma, dbeta and return dx."""
        dx, self.dgamma, self.dbeta = groupnorm_backward(dout, self._cache)
        return dx


def make_norm(norm, channels, groups=2):
    """The normalisation layer for a name: None, 'batch', 'layer', 'instance' or 'group'."""
    if norm is None:
        return None
    if norm not in KINDS:
        raise ValueError(f"norm must be None or one of {sorted(KINDS)}, got {norm!r}")
    G = num_groups(norm, channels, groups)
    return SpatialBatchNorm(channels) if G is None else GroupNorm(channels, G)
