"""A fully connected network whose hidden blocks apply BN, an activation and dropout in order."""

import numpy as np

from course.batchnorm import DEFAULT_MOMENTUM
from course.layers import (
    affine_backward,
    affine_forward,
    dropout_backward,
    dropout_forward,
    relu_backward,
    relu_forward,
    sigmoid_backward,
    sigmoid_forward,
)
from course.network import Network
from course.norm_layers import BatchNorm1d

ACTIVATIONS = {"relu": (relu_forward, relu_backward),
               "sigmoid": (sigmoid_forward, sigmoid_backward)}
OPS = ("bn", "drop", *ACTIVATIONS)  # what a hidden block may hold after its affine layer


class MLP(Network):
    """[affine -> (BN) -> activation] x hidden layers -> affine scores.

    block_ops(i) names the ops after affine layer i; forward, backward and params follow it, so
    course.placement.PlacementMLP only chooses another order (and adds dropout)."""

    def __init__(self, sizes, activation="relu", batchnorm=False, weight_scale=None, seed=0,
                 momentum=DEFAULT_MOMENTUM, norm=BatchNorm1d):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
        rng = np.random.default_rng(seed)
        self.W, self.b, self.bn = [], [], []
        for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
            # Default scale: He for ReLU, LeCun N(0, 1/fan_in) otherwise (not Xavier/Glorot, which
            # averages fan-in and fan-out); a number overrides it (for sweeps).
            gain = 2.0 if activation == "relu" else 1.0
            scale = np.sqrt(gain / d_in) if weight_scale is None else weight_scale
            self.W.append(rng.normal(0.0, scale, (d_in, d_out)))  # (D_in, D_out)
            self.b.append(np.zeros(d_out))  # (D_out,)
            hidden = i < len(sizes) - 2
            # norm: the layer class where BN goes (BatchRenorm1d in notebook 07).
            self.bn.append(norm(d_out, momentum=momentum) if batchnorm and hidden else None)
        self.activation, self.grads = activation, {}

    def block_ops(self, i):
        """The ops after affine layer i, in order: none for the classifier; BN where self.bn[i]
        is a layer (folding or an ablation may set it to None), then the activation."""
        if i == len(self.W) - 1:
            return ()
        return ("bn", self.activation) if self.bn[i] is not None else (self.activation,)

    def forward(self, X):
        """Class scores for a batch X of shape (N, D)."""
        # Kept for diagnostics: what each BN layer and each hidden activation received.
        self._caches, self.bn_inputs, self.preacts = [], [], []
        h = X  # (N, D)
        for i, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            h, aff = affine_forward(h, W, b)  # (N, D_out)
            ops = []
            for op in self.block_ops(i):
                if op == "bn":
                    self.bn_inputs.append(h)
                    h, c = self.bn[i].forward(h), None  # (N, D_out)
                elif op == "drop":
                    h, c = dropout_forward(h, self.p_drop, self.rng, self.training)
                else:
                    self.preacts.append(h)
                    h, c = ACTIVATIONS[op][0](h)  # (N, D_out)
                ops.append((op, c))
            self._caches.append((aff, ops))
        return h  # (N, C)

    def backward(self, dscores):
        """Backpropagate dscores; gradients land in self.grads."""
        dh = dscores  # (N, C)
        for i in reversed(range(len(self.W))):
            aff, ops = self._caches[i]
            for op, c in reversed(ops):
                if op == "bn":
                    dh = self.bn[i].backward(dh)
                elif op == "drop":
                    dh = dropout_backward(dh, c)
                else:
                    dh = ACTIVATIONS[op][1](dh, c)
            dh, self.grads[f"W{i}"], self.grads[f"b{i}"] = affine_backward(dh, aff)
        return dh

    def params(self):
        """Every learnable array with its gradient, as (name, value, grad) in a fixed order."""
        out = []
        for i, (W, b) in enumerate(zip(self.W, self.b, strict=True)):
            blk = self.block_ops(i)
            bn = self.bn[i] if i < len(self.bn) else None
            # Only a BN straight after the affine layer cancels its bias (ReLU -> BN does not).
            out += self.layer_params(W, b, bn, train_bias=not blk or blk[0] != "bn",
                                     names=(f"W{i}", f"b{i}", f"bn{i}"))
        return out
