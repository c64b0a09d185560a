"""A fully connected network with optional batch normalization before each activation."""

import numpy as np

from course.batchnorm import DEFAULT_MOMENTUM
from course.layers import (
    affine_backward,
    affine_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
)
from course.network import Network
from course.norm_layers import BatchNorm1d

ACTIVATIONS = {"relu": (relu_forward, relu_backward),
               "sigmoid": (sigmoid_forward, sigmoid_backward)}


class MLP(Network):
    """[affine -> (BN) -> activation] x hidden layers -> affine scores."""

    def __init__(self, sizes, activation="relu", batchnorm=False, weight_scale=None, seed=0,
                 momentum=DEFAULT_MOMENTUM, norm=BatchNorm1d):
        rng = np.random.default_rng(seed)
        self.act_forward, self.act_backward = ACTIVATIONS[activation]
        self.W, self.b, self.bn = [], [], []
        for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
            # Default scale: He for ReLU, Xavier for sigmoid; a number overrides it (for sweeps).
            gain = 2.0 if activation == "relu" else 1.0
            scale = np.sqrt(gain / d_in) if weight_scale is None else weight_scale
            self.W.append(rng.normal(0.0, scale, (d_in, d_out)))  # (D_in, D_out)
            self.b.append(np.zeros(d_out))  # (D_out,)
            hidden = i < len(sizes) - 2
            # norm: the layer class where BN goes (BatchRenorm1d in notebook 07).
            self.bn.append(norm(d_out, momentum=momentum) if batchnorm and hidden else None)
        self.grads = {}
        self.preacts = []  # inputs of each hidden activation, kept for diagnostics

    def forward(self, X):
        """Class scores for a batch X of shape (N, D)."""
        self._caches, self.preacts = [], []
        h = X  # (N, D)
        last = len(self.W) - 1
        for i, (W, b, bn) in enumerate(zip(self.W, self.b, self.bn, strict=True)):
            h, aff_cache = affine_forward(h, W, b)  # (N, D_out)
            if i == last:
                self._caches.append((aff_cache, None))
                break
            if bn is not None:
                h = bn.forward(h)  # (N, D_out)
            self.preacts.append(h)
            h, act_cache = self.act_forward(h)  # (N, D_out)
            self._caches.append((aff_cache, act_cache))
        return h  # (N, C)

    def backward(self, dscores):
        """Backpropagate dscores; gradients land in self.grads."""
        dh = dscores  # (N, C)
        for i in reversed(range(len(self.W))):
            aff_cache, act_cache = self._caches[i]
            if act_cache is not None:
                dh = self.act_backward(dh, act_cache)
                if self.bn[i] is not None:
                    dh = self.bn[i].backward(dh)
            dh, dW, db = affine_backward(dh, aff_cache)
            self.grads[f"W{i}"], self.grads[f"b{i}"] = dW, db
        return dh

    def params(self):
        """Every learnable array with its gradient, as (name, value, grad) in a fixed order."""
        return [p for i, (W, b, bn) in enumerate(zip(self.W, self.b, self.bn, strict=True))
                for p in self.layer_params(i, W, b, bn, train_bias=bn is None)]
