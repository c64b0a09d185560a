"""A deep residual MLP: h + branch(h) with branch = affine -> BN -> ReLU -> affine -> BN, whose
last BN may start at gamma = 0 so that every block starts as the identity."""

import numpy as np

from course.experiments import run
from course.layers import affine_backward, affine_forward, relu_backward, relu_forward
from course.network import Network
from course.norm_layers import BatchNorm1d


class ResidualMLP(Network):
    """affine -> ReLU -> [h + branch(h)] x blocks -> affine scores."""

    def __init__(self, blocks, width=64, d_in=64, classes=10, zero_gamma=True, seed=0):
        rng = np.random.default_rng(seed)

        def he(a, b):
            return rng.normal(0.0, np.sqrt(2.0 / a), (a, b))  # (a, b)

        self.W_in, self.b_in = he(d_in, width), np.zeros(width)  # (D, H), (H,)
        self.W_out, self.b_out = he(width, classes), np.zeros(classes)  # (H, C), (C,)
        # Per block: two (H, H) weights (their biases are cancelled by the BN right after them).
        self.W1 = [he(width, width) for _ in range(blocks)]
        self.W2 = [he(width, width) for _ in range(blocks)]
        self.bn1 = [BatchNorm1d(width) for _ in range(blocks)]
        self.bn2 = [BatchNorm1d(width) for _ in range(blocks)]
        if zero_gamma:
            for bn in self.bn2:
                bn.gamma[:] = 0.0  # the branch outputs 0: the block is the identity
        self.bn = self.bn1 + self.bn2  # every mode-dependent layer (Network, recalibrate)
        self.grads = {}
        self._zero = np.zeros(width)  # (H,) the absent bias of the branch affines

    def forward(self, X):
        """Class scores for a batch X of shape (N, D)."""
        h, self._c_in = affine_forward(X, self.W_in, self.b_in)  # (N, H)
        h, self._c_relu_in = relu_forward(h)  # (N, H)
        self._caches = []
        for W1, W2, bn1, bn2 in zip(self.W1, self.W2, self.bn1, self.bn2, strict=True):
            a, c1 = affine_forward(h, W1, self._zero)  # (N, H)
            a, c_relu = relu_forward(bn1.forward(a))  # (N, H)
            r, c2 = affine_forward(a, W2, self._zero)  # (N, H)
            h = h + bn2.forward(r)  # (N, H)  the skip connection
            self._caches.append((c1, c_relu, c2))
        scores, self._c_out = affine_forward(h, self.W_out, self.b_out)  # (N, C)
        return scores

    def backward(self, dscores):
        """Backpropagate dscores; gradients land in self.grads."""
        dh, self.grads["W_out"], self.grads["b_out"] = affine_backward(dscores, self._c_out)
        for k in reversed(range(len(self.W1))):
            c1, c_relu, c2 = self._caches[k]
            dr = self.bn2[k].backward(dh)  # (N, H)  the branch's share
            da, self.grads[f"W2_{k}"], _ = affine_backward(dr, c2)
            da = self.bn1[k].backward(relu_backward(da, c_relu))  # (N, H)
            dx, self.grads[f"W1_{k}"], _ = affine_backward(da, c1)
            dh = dh + dx  # the skip passes dh through unchanged
        dh = relu_backward(dh, self._c_relu_in)
        dX, self.grads["W_in"], self.grads["b_in"] = affine_backward(dh, self._c_in)
        return dX

    def params(self):
        """Every learnable array with its gradient, as (name, value, grad) in a fixed order."""
        g = self.grads.get
        out = [("W_in", self.W_in, g("W_in")), ("b_in", self.b_in, g("b_in"))]
        for k, (W1, W2, bn1, bn2) in enumerate(zip(self.W1, self.W2, self.bn1, self.bn2,
                                                   strict=True)):
            out += [(f"W1_{k}", W1, g(f"W1_{k}"))]
            out += [(f"bn1_{k}.{n}", v, d) for n, v, d in bn1.params()]
            out += [(f"W2_{k}", W2, g(f"W2_{k}"))]
            out += [(f"bn2_{k}.{n}", v, d) for n, v, d in bn2.params()]
        return out + [("W_out", self.W_out, g("W_out")), ("b_out", self.b_out, g("b_out"))]


def depth_sweep(depths=(2, 16), seeds=(0, 1, 2), lr=0.1, epochs=1):
    """Final validation accuracy per depth and seed, last BN of each branch at gamma = 0 vs 1:
    {zero_gamma: array (seeds, depths)}."""
    return {z: np.array([[run(make_model=lambda s, b=b, z=z: ResidualMLP(b, zero_gamma=z, seed=s),
                              lr=lr, epochs=epochs, seed=s)[1].val_acc[-1] for b in depths]
                         for s in seeds]) for z in (True, False)}
