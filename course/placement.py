"""Where BN sits: an MLP whose hidden blocks order affine, BN, ReLU and dropout as you choose.

course.mlp.MLP fixes the order affine -> BN -> activation; this model lets notebook 06 compare
BN before or after the ReLU, and dropout before or after BN, on the same data and budget.
"""

import numpy as np

from course.mlp import MLP, OPS
from course.norm_layers import BatchNorm1d

# Named layouts: for L hidden layers, the ops after each hidden affine layer, in order.
PLACEMENTS = {
    "BN -> ReLU": lambda L: [("bn", "relu")] * L,
    "ReLU -> BN": lambda L: [("relu", "bn")] * L,
    # Dropout in every block: each dropout feeds the next block's BN.
    "BN -> ReLU -> dropout, every block": lambda L: [("bn", "relu", "drop")] * L,
    # Dropout only after the last BN: no BN ever sees dropped-out inputs.
    "dropout after the last BN only": lambda L: [("bn", "relu")] * (L - 1)
    + [("bn", "relu", "drop")],
}


class PlacementMLP(MLP):
    """Hidden blocks [affine -> ops in the given order] then an affine classifier."""

    def __init__(self, sizes, blocks, p_drop=0.5, seed=0):
        """blocks: one tuple of ops ("bn", "relu", "drop") per hidden layer."""
        rng = np.random.default_rng(seed)
        self.blocks = [tuple(b) for b in blocks]
        if len(self.blocks) != len(sizes) - 2:
            raise ValueError(f"need {len(sizes) - 2} hidden blocks, got {len(self.blocks)}")
        unknown = {op for blk in self.blocks for op in blk} - set(OPS)
        if unknown:
            raise ValueError(f"unknown ops {sorted(unknown)}; a block holds ops from {OPS}")
        self.W = [rng.normal(0.0, np.sqrt(2.0 / d), (d, m))  # (D_in, D_out)  He init
                  for d, m in zip(sizes[:-1], sizes[1:], strict=False)]
        self.b = [np.zeros(m) for m in sizes[1:]]  # (D_out,)
        self.bn = [BatchNorm1d(m) if "bn" in blk else None
                   for m, blk in zip(sizes[1:-1], self.blocks, strict=True)]
        self.p_drop, self.rng = p_drop, np.random.default_rng(seed + 1)
        self.grads = {}  # dropout reads self.training, the network's own mode

    def block_ops(self, i):
        """The ops after affine layer i: the chosen block, none for the classifier."""
        return self.blocks[i] if i < len(self.blocks) else ()


def variance_shift(model, X):
    """Per BN layer: mean over features of (variance of its input in eval mode) / running_var.

    1 means the statistics BN was trained with match what it sees at test time; dropout placed
    before a BN layer makes its training-time input more variable than its test-time input.
    """
    with model.predicting():
        model.forward(X)
    return [float(np.mean(h.var(axis=0) / bn.running_var))
            for h, bn in zip(model.bn_inputs, [b for b in model.bn if b is not None], strict=True)]
