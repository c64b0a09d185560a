"""Where BN sits: an MLP whose hidden blocks order affine, BN, ReLU and dropout as you choose.

course.mlp.MLP fixes the order affine -> BN -> activation; this model lets notebook 06 compare
BN before or after the ReLU, and dropout before or after BN, on the same data and budget.
"""

import copy

import numpy as np

from course.claims import Claim
from course.experiments import digits, run
from course.mlp import MLP, OPS
from course.norm_layers import BatchNorm1d
from course.running_stats import recalibrate
from course.train import accuracy

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


def compare_layouts(seeds=range(5), epochs=5, p_drop=0.5, lr=0.05):
    """Per layout of PLACEMENTS (64-64-64-10, batch 64): validation accuracy and the second BN
    layer's variance shift, as trained and after recalibrating every BN layer's statistics on
    the training inputs in eval mode (dropout off), the control that removes the shift:
    {layout: {"acc", "shift", "acc recalibrated", "shift recalibrated": (seeds,)}}."""
    d = digits()
    out = {}
    for name, layout in PLACEMENTS.items():
        rows = []
        for seed in seeds:
            m, h = run(make_model=lambda s, layout=layout: PlacementMLP(
                [64, 64, 64, 10], layout(2), p_drop=p_drop, seed=s), lr=lr, epochs=epochs,
                seed=seed)
            fixed = recalibrate(copy.deepcopy(m), d.X_train)
            rows.append((h.val_acc[-1], variance_shift(m, d.X_train)[-1],
                         accuracy(fixed, d.X_val, d.y_val),
                         variance_shift(fixed, d.X_train)[-1]))
        out[name] = dict(zip(("acc", "shift", "acc recalibrated", "shift recalibrated"),
                             np.array(rows).T, strict=True))
    return out


def claims(result):
    """What the layouts show; result from compare_layouts."""
    acc = {name: r["acc"] for name, r in result.items()}
    drop = result["BN -> ReLU -> dropout, every block"]
    last = result["dropout after the last BN only"]
    sd = max(a.std(ddof=1) for a in acc.values())
    before_after = abs(acc["BN -> ReLU"].mean() - acc["ReLU -> BN"].mean())
    n = len(drop["acc"])
    cond = f"{n} seeds, 5 epochs, dropout 0.5"
    return [
        Claim("BN before or after the ReLU: the means differ by less than the seed spread",
              before_after < sd, {"difference": before_after, "largest seed sd": sd}, cond),
        Claim("with dropout in every block, the second BN sees a clearly smaller variance at test "
              "time than its running variance, and this layout has the lowest mean accuracy",
              drop["shift"].mean() < 0.8
              and drop["acc"].mean() == min(a.mean() for a in acc.values()),
              {"variance shift": drop["shift"].mean(), "val acc": drop["acc"].mean()}, cond),
        Claim("recalibrating its statistics removes the shift but not the deficit: the shift is "
              "not what costs accuracy here",
              abs(drop["shift recalibrated"].mean() - 1) < 0.05
              and abs(drop["acc recalibrated"].mean() - drop["acc"].mean()) < sd,
              {"shift after": drop["shift recalibrated"].mean(),
               "val acc after": drop["acc recalibrated"].mean(), "before": drop["acc"].mean()},
              cond),
        Claim("with dropout after the last BN only, no BN sees dropped-out inputs: shift close "
              "to 1",
              abs(last["shift"].mean() - 1) < 0.1, {"variance shift": last["shift"].mean()}, cond),
    ]
