"""BN with small batches: test-mode accuracy against train-mode accuracy on batches of the same
size, the gap notebook 06 measures, and Batch Renormalization against BN at batches of 2, 4 and
64 at equal epochs (notebook 07)."""

import numpy as np

from course.batch_renorm import batch_renorm_forward, with_reference_backward
from course.claims import Claim
from course.experiments import SEEDS, digits, run, scaled_lr
from course.mlp import MLP
from course.norm_layers import BatchNorm1d, BatchRenorm1d
from course.train import accuracy

# (batch size, epochs): one epoch for every size (equal passes over the data), and 64 for five.
RUNS = ((2, 1), (4, 1), (64, 1), (64, 5))


def renorm_layer(forward=batch_renorm_forward):
    """BatchRenorm1d whose forward is `forward` (a student's, say), trained by the reference
    backward."""
    return type("BatchRenorm1d", (BatchRenorm1d,),
                {"forward_fn": staticmethod(with_reference_backward(forward))})


def compare(forward=batch_renorm_forward, runs=RUNS, seeds=SEEDS, base_lr=0.05,
            norms=("BN", "Batch Renorm")):
    """{(B, epochs, norm): array (seeds, [test mode, train mode])}: the 64-64-64-10 MLP at
    learning rate scaled_lr(B, base_lr); train mode on random validation batches of B."""
    d = digits()
    order = np.random.default_rng(0).permutation(len(d.y_val))
    layers = {"BN": BatchNorm1d, "Batch Renorm": renorm_layer(forward)}
    out = {}
    for B, epochs in runs:
        for name, norm in ((n, layers[n]) for n in norms):
            rows = []
            for seed in seeds:
                m, _ = run(make_model=lambda s, norm=norm: MLP((64, 64, 64, 10), batchnorm=True,
                                                               seed=s, norm=norm),
                           lr=scaled_lr(B, base_lr), batch_size=B, epochs=epochs, seed=seed)
                rows.append((accuracy(m, d.X_val, d.y_val),
                             accuracy(m, d.X_val, d.y_val, B, statistics="batch", order=order)))
            out[B, epochs, name] = np.array(rows)  # (seeds, 2)
    return out


def claims(acc):
    """What the comparison supports; acc from compare()."""
    def test(B, e, name):
        return acc[B, e, name][:, 0]

    def gap(B, e, name):
        return (acc[B, e, name][:, 0] - acc[B, e, name][:, 1]).mean()
    n = len(test(2, 1, "BN"))
    cond = f"{n} seeds, lr 0.05·B/64"
    return [
        Claim("batches of 2, one epoch: Batch Renorm beats BN on every seed",
              test(2, 1, "Batch Renorm").min() > test(2, 1, "BN").max() + 0.05,
              {"BN": test(2, 1, "BN").mean(), "Batch Renorm": test(2, 1, "Batch Renorm").mean()},
              cond),
        Claim("batches of 4: BN's train-mode accuracy lags its test mode by over 10 points, Batch "
              "Renorm's two modes agree", gap(4, 1, "BN") > 0.1 > abs(gap(4, 1, "Batch Renorm")),
              {"gap BN": gap(4, 1, "BN"), "gap Batch Renorm": gap(4, 1, "Batch Renorm")}, cond),
        Claim("at equal epochs (one), Batch Renorm with batches of 4 is level with batches of 64 "
              "(within 0.03): the distance to the five-epoch accuracy is training budget",
              abs(test(4, 1, "Batch Renorm").mean() - test(64, 1, "Batch Renorm").mean()) < 0.03
              and test(64, 5, "Batch Renorm").mean() > test(64, 1, "Batch Renorm").mean() + 0.03,
              {"B = 4, 1 epoch": test(4, 1, "Batch Renorm").mean(),
               "B = 64, 1 epoch": test(64, 1, "Batch Renorm").mean(),
               "B = 64, 5 epochs": test(64, 5, "Batch Renorm").mean()}, cond),
        Claim("batches of 64, five epochs: nothing to repair, BN and Batch Renorm level within "
              "0.01",
              abs(test(64, 5, "BN").mean() - test(64, 5, "Batch Renorm").mean()) < 0.01,
              {"BN": test(64, 5, "BN").mean(), "Batch Renorm": test(64, 5, "Batch Renorm").mean()},
              cond),
    ]


def gap_claims(acc):
    """BN's train/test gap shrinks with the batch; acc from compare(norms=("BN",))."""
    gaps = {B: (a[:, 0] - a[:, 1]).mean() for (B, _, _), a in acc.items()}
    small, large = min(gaps), max(gaps)
    return [Claim(f"BN's train-mode accuracy lags its test mode far more with batches of {small} "
                  f"than with {large}",
                  gaps[small] > 0.1 > gaps[large] and gaps[small] > 5 * gaps[large],
                  {f"gap at {B}": g for B, g in gaps.items()},
                  f"{len(next(iter(acc.values())))} seed(s), lr 0.05·B/64")]
