"""BN taken apart (notebook 07): centring only, scaling only, gamma/beta frozen, BN in the first
layer only; and the claims "larger learning rates", "faster convergence", "no need for dropout
or L2" measured on the digits."""

import numpy as np

from course.batchnorm import ema_update, read_bn_param
from course.claims import Claim
from course.experiments import SEEDS, run
from course.mlp import MLP
from course.norm_layers import BatchNorm1d
from course.placement import PLACEMENTS, PlacementMLP

DEEP = (64,) + (64,) * 6 + (10,)  # six hidden ReLU layers


def center_forward(x, gamma, beta, bn_param):
    """Mean subtraction only: gamma * (x - mu) + beta, mu the batch mean (running in test mode)."""
    p = read_bn_param(bn_param, x.shape[1], x.dtype)
    if p.mode == "train":
        mu = x.mean(axis=0)  # (D,)
        if not p.frozen:
            bn_param["running_mean"] = ema_update(p.running_mean, mu, p.momentum)
    else:
        mu = p.running_mean
    x_hat = x - mu  # (N, D)
    return gamma * x_hat + beta, {"x_hat": x_hat, "gamma": gamma, "mode": p.mode}


def center_backward(dout, cache):
    """Gradients of center_forward; in train mode the mean's path subtracts mean(dout)."""
    g = dout * cache["gamma"]  # (N, D)
    dx = g - g.mean(axis=0) if cache["mode"] == "train" else g
    return dx, (dout * cache["x_hat"]).sum(axis=0), dout.sum(axis=0)


def scale_forward(x, gamma, beta, bn_param):
    """Variance scaling only: gamma * x / sqrt(var + eps) + beta, the mean left in place."""
    p = read_bn_param(bn_param, x.shape[1], x.dtype)
    if p.mode == "train":
        xmu = x - x.mean(axis=0)  # (N, D) for the variance only; x itself is not centred
        var = (xmu**2).mean(axis=0)  # (D,)
        if not p.frozen:
            bn_param["running_var"] = ema_update(p.running_var, var, p.momentum)
    else:
        xmu, var = None, p.running_var
    inv_std = 1.0 / np.sqrt(var + p.eps)  # (D,)
    x_hat = x * inv_std  # (N, D)
    return gamma * x_hat + beta, {"x_hat": x_hat, "xmu": xmu, "inv_std": inv_std,
                                  "gamma": gamma, "mode": p.mode}


def scale_backward(dout, cache):
    """Gradients of scale_forward: the direct path and, in train mode, the path through var."""
    x_hat, inv_std = cache["x_hat"], cache["inv_std"]
    dx_hat = dout * cache["gamma"]  # (N, D)
    dx = dx_hat * inv_std  # (N, D)
    if cache["mode"] == "train":
        N = dout.shape[0]
        dvar = -0.5 * (dx_hat * x_hat).sum(axis=0) * inv_std**2  # (D,) d(x/s)/dvar = -x/(2 s^3)
        dx = dx + dvar * 2 * cache["xmu"] / N  # (N, D)
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


class CenterOnly(BatchNorm1d):
    """BN without the division by the standard deviation."""

    forward_fn = staticmethod(center_forward)
    backward_fn = staticmethod(center_backward)


class ScaleOnly(BatchNorm1d):
    """BN without the mean subtraction."""

    forward_fn = staticmethod(scale_forward)
    backward_fn = staticmethod(scale_backward)


class FrozenAffine(BatchNorm1d):
    """BN with gamma = 1 and beta = 0 kept fixed: only the standardisation."""

    def params(self):
        """Nothing to learn."""
        return []


def _first_only(seed, sizes=DEEP):
    model = MLP(sizes, batchnorm=True, seed=seed)
    model.bn[1:] = [None] * (len(model.bn) - 1)  # the hidden layers after the first: no BN
    return model


VARIANTS = {
    "full BN": lambda s: MLP(DEEP, batchnorm=True, seed=s),
    "γ, β frozen at (1, 0)": lambda s: MLP(DEEP, batchnorm=True, seed=s, norm=FrozenAffine),
    "mean subtraction only": lambda s: MLP(DEEP, batchnorm=True, seed=s, norm=CenterOnly),
    "variance scaling only": lambda s: MLP(DEEP, batchnorm=True, seed=s, norm=ScaleOnly),
    "BN in the first layer only": _first_only,
    "no BN": lambda s: MLP(DEEP, batchnorm=False, seed=s),
}


ABLATION_LRS = (0.05, 0.1)  # where the plain network trains well, and the edge of its stability


def ablation(lrs=ABLATION_LRS, epochs=3, seeds=SEEDS):
    """Final validation accuracy of every variant at each learning rate: {lr: {name: (seeds,)}}."""
    return {lr: {name: np.array([run(make_model=make, lr=lr, epochs=epochs, seed=s)[1].val_acc[-1]
                                 for s in seeds]) for name, make in VARIANTS.items()}
            for lr in lrs}


CHANCE_LOSS = float(np.log(10))  # the loss of uniform guessing over ten classes


def outcome(hist, threshold=1.0, window=10):
    """'diverged' when the mean loss of the last `window` steps is not finite or not below chance
    (ln 10), 'slow' when it is below chance but not below threshold, else 'stable'."""
    tail = np.mean(hist.loss[-window:])
    if not np.isfinite(tail) or tail >= CHANCE_LOSS:
        return "diverged"
    return "stable" if tail < threshold else "slow"


def stable(hist, threshold=1.0):
    """A run is stable when it neither diverged nor stayed above threshold (see outcome)."""
    return outcome(hist, threshold) == "stable"


# Per network, the learning rates tried: its fastest, its largest stable one and the next one up
# (which fails), so the grid brackets each threshold.
LR_GRID = {True: (0.05, 0.1, 0.3, 1.0, 1.5), False: (0.03, 0.05, 0.1, 0.15)}
SAME_LR = 0.05  # where both networks train


def lr_grid(grid=LR_GRID, epochs=3, seeds=SEEDS):
    """One run of DEEP per network, learning rate and seed: {(bn, lr): [History per seed]}."""
    out = {}
    for bn, lrs in grid.items():
        for lr in lrs:
            with np.errstate(all="ignore"):  # a diverging run overflows: that is what we test
                out[bn, lr] = [run(make_model=lambda seed, bn=bn: MLP(DEEP, batchnorm=bn,
                                                                      seed=seed),
                                   lr=lr, epochs=epochs, seed=s)[1] for s in seeds]
    return out


def largest_stable_lr(runs):
    """Per network, the largest learning rate of the grid whose run is stable, per seed (0 where
    none is): {bn: (seeds,)}; runs from lr_grid."""
    out = {}
    for bn in (True, False):
        lrs = sorted(lr for b, lr in runs if b == bn)
        ok = np.array([[stable(h) for h in runs[bn, lr]] for lr in lrs])  # (lrs, seeds)
        out[bn] = np.array([max((lr for lr, o in zip(lrs, col, strict=True) if o), default=0.0)
                            for col in ok.T])
    return out


def steps_to_loss(hist, target=0.5, window=10):
    """The first step at which the mean training loss of the last `window` steps is below
    target (np.inf when it never is)."""
    loss = np.asarray(hist.loss)
    means = np.convolve(loss, np.ones(window) / window, mode="valid")  # (steps - window + 1,)
    hit = np.nonzero(means < target)[0]
    return float(hit[0] + window) if hit.size else np.inf


def steps_table(runs):
    """Steps to a training loss below 0.5 per seed: {(bn, lr): (seeds,)}; runs from lr_grid."""
    return {key: np.array([steps_to_loss(h) for h in hists]) for key, hists in runs.items()}


def fastest_lr(steps, bn):
    """The learning rate at which a network reaches the loss in the fewest steps, mean over seeds
    (a seed that never reaches it makes that rate's mean infinite)."""
    return min((lr for b, lr in steps if b == bn), key=lambda lr: steps[bn, lr].mean())


def lr_table(runs):
    """Rows (network, lr, outcome per seed, steps per seed) for printing."""
    steps = steps_table(runs)
    return [("with BN" if bn else "without BN", lr, [outcome(h) for h in hists],
             steps[bn, lr].tolist()) for (bn, lr), hists in runs.items()]


def lr_claims(runs):
    """Larger learning rates, faster convergence at the same rate, and at each one's best."""
    best, steps = largest_stable_lr(runs), steps_table(runs)
    grid = {bn: sorted(lr for b, lr in runs if b == bn) for bn in (True, False)}

    def above(bn, lr):  # the next grid point: the threshold lies below it
        return min((g for g in grid[bn] if g > lr), default=np.inf)
    low = best[True].min() / max(above(False, v) for v in best[False])
    high = min(above(True, v) for v in best[True]) / best[False].max()
    same_bn, same_no = steps[True, SAME_LR], steps[False, SAME_LR]
    fast_bn, fast_no = fastest_lr(steps, True), fastest_lr(steps, False)
    speedup_same = same_no.mean() / same_bn.mean()
    speedup_best = steps[False, fast_no].mean() / steps[True, fast_bn].mean()
    largest_bn = best[True].min()
    cond = f"{len(same_bn)} seeds, six hidden layers, SGD momentum 0.9, 3 epochs of 22 steps"
    return [
        Claim("with BN the deep network trains stably at learning rates about ten times larger "
              "than without it, on every seed",
              best[True].min() >= 5 * best[False].max(),
              {"largest stable with BN": best[True].tolist(), "without": best[False].tolist(),
               "ratio bracketed by the grid": f"{low:.1f}x to {high:.0f}x"}, cond),
        Claim(f"at the same learning rate ({SAME_LR}), BN reaches a training loss of 0.5 in fewer "
              "steps on every seed, by a modest factor",
              same_bn.max() < same_no.min() and speedup_same < 3,
              {"steps with BN": same_bn.tolist(), "without": same_no.tolist(),
               "speed-up": speedup_same}, cond),
        Claim("each network at its own fastest learning rate, BN is still faster by a modest "
              "factor, not by the ten times its learning rates allow",
              1 < speedup_best < 3,
              {"fastest lr with BN": fast_bn, "without": fast_no, "speed-up": speedup_best}, cond),
        Claim("BN's largest stable learning rate is not its fastest: there it needs more steps "
              "than at its fastest rate",
              fast_bn < largest_bn and steps[True, largest_bn].mean() > steps[True, fast_bn].mean(),
              {"steps at lr " + f"{largest_bn:g}": steps[True, largest_bn].tolist(),
               f"at lr {fast_bn:g}": steps[True, fast_bn].tolist()}, cond),
    ]


def ablation_claims(acc):
    """What the ablation supports at both learning rates; acc from ablation()."""
    def overlap(a, b):
        return a.min() <= b.max() and b.min() <= a.max()
    lrs = sorted(acc)
    lo, hi = lrs[0], lrs[-1]
    at = {lr: {"full": acc[lr]["full BN"], "none": acc[lr]["no BN"],
               "center": acc[lr]["mean subtraction only"],
               "scale": acc[lr]["variance scaling only"],
               "frozen": acc[lr]["γ, β frozen at (1, 0)"],
               "first": acc[lr]["BN in the first layer only"]} for lr in lrs}
    best_center = max((at[lr]["center"] for lr in lrs), key=np.mean)
    best_scale = max((at[lr]["scale"] for lr in lrs), key=np.mean)
    cond = f"{len(at[lo]['full'])} seeds, six hidden layers, 3 epochs"
    both = " and ".join(f"{lr:g}" for lr in lrs)
    return [
        Claim(f"full BN beats no BN on every seed, at lr {both}",
              all(at[lr]["full"].min() > at[lr]["none"].max() for lr in lrs),
              {f"lr {lr:g}": f"{at[lr]['full'].mean():.3f} vs {at[lr]['none'].mean():.3f}"
               for lr in lrs}, cond),
        Claim(f"at lr {hi:g} variance scaling alone is ahead of mean subtraction alone on "
              f"average; at lr {lo:g} it is not: the ranking of the two depends on the "
              "learning rate",
              at[hi]["scale"].mean() > at[hi]["center"].mean()
              and at[lo]["scale"].mean() <= at[lo]["center"].mean(),
              {f"lr {lr:g}": f"scaling {at[lr]['scale'].mean():.3f} vs centring "
               f"{at[lr]['center'].mean():.3f}" for lr in lrs}, cond),
        Claim("each at its better learning rate, the two partial variants' ranges overlap, and "
              "neither reaches full BN on average",
              overlap(best_center, best_scale)
              and max(best_center.mean(), best_scale.mean())
              < min(at[lr]["full"].mean() for lr in lrs),
              {"mean subtraction only": best_center.mean(),
               "variance scaling only": best_scale.mean(),
               "full BN": min(at[lr]["full"].mean() for lr in lrs)}, cond),
        Claim(f"freezing γ and β costs little: the frozen variant's range overlaps full BN's at "
              f"lr {both}", all(overlap(at[lr]["frozen"], at[lr]["full"]) for lr in lrs),
              {f"lr {lr:g}": f"{at[lr]['frozen'].mean():.3f} vs {at[lr]['full'].mean():.3f}"
               for lr in lrs}, cond),
        Claim(f"BN in the first layer only is behind full BN on every seed, at lr {both}",
              all(at[lr]["first"].max() < at[lr]["full"].min() for lr in lrs),
              {f"lr {lr:g}": f"{at[lr]['first'].mean():.3f} vs {at[lr]['full'].mean():.3f}"
               for lr in lrs}, cond),
    ]


def regularisers(lr=0.1, epochs=8, p_drop=0.2, weight_decay=1e-3, seeds=SEEDS):
    """Train and validation accuracy of the two-hidden-layer network with BN alone, BN + dropout
    (after the last BN only, notebook 06's advice), BN + L2, and the same without BN, to see
    whether the regularisers help at all here: {name: (len(seeds), 2)}."""
    def with_dropout(bn):
        layout = PLACEMENTS["dropout after the last BN only"](2)
        if not bn:
            layout = [tuple(op for op in block if op != "bn") for block in layout]
        return lambda seed: PlacementMLP([64, 64, 64, 10], layout, p_drop=p_drop, seed=seed)
    setups = {}
    for bn, label in ((True, "BN"), (False, "no BN")):
        setups[f"{label} alone"] = {"batchnorm": bn}
        setups[f"{label} + dropout {p_drop}"] = {"make_model": with_dropout(bn)}
        setups[f"{label} + L2 {weight_decay:g}"] = {"batchnorm": bn, "weight_decay": weight_decay}
    return {name: np.array([(h.train_acc[-1], h.val_acc[-1]) for h in
                            (run(lr=lr, epochs=epochs, seed=s, **kw)[1] for s in seeds)])
            for name, kw in setups.items()}


def regulariser_claims(acc):
    """Whether dropout or L2 could be tested here; acc from regularisers()."""
    val = {name: a[:, 1] for name, a in acc.items()}
    means = np.array([v.mean() for v in val.values()])
    sd = max(v.std(ddof=1) for v in val.values())
    alone = {bn: val[f"{bn} alone"].mean() for bn in ("BN", "no BN")}
    gain = max(v.mean() - alone[name.split(" +")[0]] for name, v in val.items() if "+" in name)
    return [Claim("all six set-ups end within a few seed standard deviations of each other, and "
                  "no regulariser improves on its network alone by more than one: not testable "
                  "here",
                  np.ptp(means) < 4 * sd and gain < sd,
                  {"range of the means": float(np.ptp(means)), "largest seed sd": sd,
                   "largest gain from a regulariser": float(gain)},
                  f"{len(next(iter(val.values())))} seeds, two hidden layers, 8 epochs")]
