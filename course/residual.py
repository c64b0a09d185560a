"""A deep residual MLP: h + branch(h) with branch = affine -> BN -> ReLU -> affine -> BN, whose
last BN may start at gamma = 0 so that every block starts as the identity."""

import numpy as np

from course.claims import Claim
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


STEPS_PER_EPOCH = 1438 // 64  # 22 SGD steps: one pass over the training digits in batches of 64


def depth_sweep(depths=(2, 16), seeds=(0, 1, 2), lr=0.1, epochs=3):
    """Validation accuracy after every epoch, per seed and depth, last BN of each branch at
    gamma = 0 vs 1: {zero_gamma: array (seeds, depths, epochs)}."""
    return {z: np.array([[run(make_model=lambda s, b=b, z=z: ResidualMLP(b, zero_gamma=z, seed=s),
                              lr=lr, epochs=epochs, seed=s)[1].val_acc for b in depths]
                         for s in seeds]) for z in (True, False)}


def claims(acc, depths=(2, 16)):
    """What zero-initialised γ does, with its horizon; acc from depth_sweep."""
    zero, one = acc[True], acc[False]  # (seeds, depths, epochs)
    deep, shallow, last = depths.index(max(depths)), depths.index(min(depths)), zero.shape[2] - 1
    gap = (zero[:, deep].mean(axis=0) - one[:, deep].mean(axis=0))  # (epochs,)
    n, steps = zero.shape[0], STEPS_PER_EPOCH
    cond = f"{n} seeds, lr 0.1, batches of 64"
    return [
        Claim(f"after one epoch ({steps} steps), γ = 0 is far ahead at {max(depths)} blocks, "
              "every seed", zero[:, deep, 0].min() > one[:, deep, 0].max() + 0.1,
              {"γ = 0": zero[:, deep, 0].mean(), "γ = 1": one[:, deep, 0].mean()}, cond),
        Claim(f"after one epoch, γ = 0 trains {max(depths)} blocks about as well as "
              f"{min(depths)}", zero[:, deep, 0].mean() > zero[:, shallow, 0].mean() - 0.02,
              {f"{max(depths)} blocks": zero[:, deep, 0].mean(),
               f"{min(depths)} blocks": zero[:, shallow, 0].mean()}, cond),
        Claim(f"the gap closes with training: after {last + 1} epochs ({(last + 1) * steps} steps) "
              "it is under a fifth of its size after one",
              gap[last] < gap[0] / 5,
              {"gap after 1 epoch": gap[0], f"after {last + 1}": gap[last]}, cond),
    ]
