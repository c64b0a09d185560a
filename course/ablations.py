"""BN taken apart (notebook 07): centring only, scaling only, gamma/beta frozen, BN in the first
layer only; and the claims "larger learning rates", "faster convergence", "no need for dropout
or L2" measured on the digits."""

import numpy as np

from course.batchnorm import ema_update, read_bn_param
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


def ablation(lr=0.1, epochs=3, seeds=SEEDS):
    """Final validation accuracy of every variant: {name: (len(seeds),)}."""
    return {name: np.array([run(make_model=make, lr=lr, epochs=epochs, seed=s)[1].val_acc[-1]
                            for s in seeds]) for name, make in VARIANTS.items()}


def stable(hist, threshold=1.0):
    """A run is stable when the mean loss of its last 10 steps is finite and below threshold
    (chance is ln 10 = 2.3): it did not diverge and it learned."""
    tail = np.mean(hist.loss[-10:])
    return bool(np.isfinite(tail) and tail < threshold)


def largest_stable_lr(lrs, epochs=2, seeds=SEEDS):
    """For BN and no BN on DEEP: the largest learning rate of lrs that is stable, per seed
    (0 where none is): {bn: (len(seeds),)}."""
    out = {}
    for bn in (True, False):
        best = []
        for s in seeds:
            with np.errstate(all="ignore"):  # a diverging run overflows: that is what we test
                ok = [lr for lr in lrs if stable(run(
                    make_model=lambda seed, bn=bn: MLP(DEEP, batchnorm=bn, seed=seed), lr=lr,
                    epochs=epochs, seed=s)[1])]
            best.append(max(ok, default=0.0))
        out[bn] = np.array(best)
    return out


def steps_to_loss(hist, target=0.5, window=10):
    """The first step at which the mean training loss of the last `window` steps is below
    target (np.inf when it never is)."""
    loss = np.asarray(hist.loss)
    means = np.convolve(loss, np.ones(window) / window, mode="valid")  # (steps - window + 1,)
    hit = np.nonzero(means < target)[0]
    return float(hit[0] + window) if hit.size else np.inf


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
