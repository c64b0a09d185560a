"""The smoothness view of BN (Santurkar et al., 2018): along the training path, how much the loss
and its gradient change when stepping along the gradient, with and without BN — at the same
epochs and, since the BN network is further along there, at the same training loss."""

import numpy as np

from course.claims import Claim
from course.experiments import digits
from course.layers import softmax_loss
from course.mlp import MLP
from course.optim import SGD
from course.train import train

DEEP_RELU = (64,) + (64,) * 8 + (10,)  # eight hidden ReLU layers
STEP_MULTIPLES = (0.25, 0.5, 1.0, 2.0, 4.0)  # step sizes as multiples of the learning rate
AT_LR = STEP_MULTIPLES.index(1.0)  # the column of eta = lr
LOSS_TARGETS = (1.0, 0.6, 0.4)  # probe-batch losses both networks pass within four epochs


def flat_loss_and_grad(model, X, y):
    """Loss and flat gradient (P,) of a network on a fixed batch, BN with that batch's
    statistics, buffers untouched."""
    with model.predicting("batch"):
        loss, dscores = softmax_loss(model.forward(X), y)  # dscores (N, C)
        model.backward(dscores)
    return loss, np.concatenate([g.ravel() for _, _, g in model.params()])  # (P,)


def _batch_loss(model, X, y):
    with model.predicting("batch"):
        return softmax_loss(model.forward(X), y)[0]


def probe(model, X, y, etas):
    """Along -g from w, per eta: the loss L(w - eta g), the gradient change |grad(w - eta g) - g|
    and that change relative to |g|; the effective smoothness max_eta change / (eta |g|). The
    model's parameters are restored exactly afterwards."""
    loss0, g = flat_loss_and_grad(model, X, y)  # g (P,)
    saved = [v.copy() for _, v, _ in model.params()]
    losses, changes = [], []
    for eta in etas:
        k = 0
        for _, v, _ in model.params():
            v -= eta * g[k:k + v.size].reshape(v.shape)  # w - eta g, in place
            k += v.size
        loss, g_eta = flat_loss_and_grad(model, X, y)
        for (_, v, _), w in zip(model.params(), saved, strict=True):
            v[...] = w  # back to w, bit for bit
        losses.append(loss)
        changes.append(np.linalg.norm(g_eta - g))
    changes, g_norm = np.array(changes), float(np.linalg.norm(g))  # (E,)
    return {"loss0": loss0, "losses": np.array(losses), "grad_change": changes,
            "grad_norm": g_norm, "rel_change": changes / g_norm,
            "beta": float(np.max(changes / (np.asarray(etas) * g_norm)))}


def _stack(probes):
    """List of probe dicts -> dict of arrays, one row per probe."""
    return {"loss0": np.array([p["loss0"] for p in probes]),
            "loss_spread": np.array([np.ptp(p["losses"]) for p in probes]),
            "grad_change": np.array([p["grad_change"] for p in probes]),
            "grad_norm": np.array([p["grad_norm"] for p in probes]),
            "rel_change": np.array([p["rel_change"] for p in probes]),
            "beta": np.array([p["beta"] for p in probes])}


def landscape(batchnorm, seed=0, sizes=DEEP_RELU, lr=0.05, epochs=4, probe_size=256,
              multiples=STEP_MULTIPLES, targets=LOSS_TARGETS):
    """Probes at initialisation and after each epoch (arrays with epochs + 1 rows), and at the
    first step where the probe batch's loss falls below each target ("matched", one row per
    target, NaN where never reached), plus the final validation accuracy."""
    d = digits()
    X, y = d.X_train[:probe_size], d.y_train[:probe_size]  # the same fixed batch every time
    model = MLP(sizes, batchnorm=batchnorm, seed=seed)
    opt, etas = SGD(lr), lr * np.asarray(multiples)
    probes, matched, steps, done = [probe(model, X, y, etas)], {}, {}, [0]

    def at_targets(m, step):  # step counts within the epoch; done[0] the steps before it
        if len(matched) < len(targets):
            loss = _batch_loss(m, X, y)
            for t in targets:
                if t not in matched and loss < t:
                    matched[t], steps[t] = probe(m, X, y, etas), done[0] + step

    val = None
    for e in range(epochs):
        hist = train(model, d.X_train, d.y_train, d.X_val, d.y_val, opt, epochs=1,
                     seed=seed * 100 + e, after_step=at_targets)
        val, done[0] = hist.val_acc[-1], done[0] + len(hist.loss)
        probes.append(probe(model, X, y, etas))
    nan = {k: np.nan * v for k, v in probes[0].items() if k != "losses"} | {"losses": etas * np.nan}
    at = _stack([matched.get(t, nan) for t in targets])
    at["step"] = np.array([steps.get(t, np.nan) for t in targets], dtype=float)
    return {**_stack(probes), "losses": np.array([p["losses"] for p in probes]),
            "matched": at, "targets": np.asarray(targets), "val_acc": val, "etas": etas}


def compare(seeds=range(5), **kw):
    """landscape() without and with BN for each seed: {bn: list of results}."""
    return {bn: [landscape(bn, s, **kw) for s in seeds] for bn in (False, True)}


def per_seed(results, key, column=None, matched=False):
    """{bn: array (seeds, checkpoints)} of one measurement; column picks a step size."""
    out = {}
    for bn, runs in results.items():
        rows = [r["matched"][key] if matched else r[key] for r in runs]
        out[bn] = np.array([row[:, column] if column is not None else row for row in rows])
    return out


def ratios(results, key, column=None, matched=False):
    """Mean without BN / mean with BN, per checkpoint (after initialisation unless matched)."""
    v = per_seed(results, key, column, matched)
    first = 0 if matched else 1
    return np.nanmean(v[False], axis=0)[first:] / np.nanmean(v[True], axis=0)[first:]


def claims(results):
    """What the smoothness probes support, at matched epochs and at matched training loss."""
    grad = ratios(results, "grad_norm")
    absolute = ratios(results, "grad_change", AT_LR)
    relative = ratios(results, "rel_change", AT_LR)
    beta = ratios(results, "beta")
    rel_m = ratios(results, "rel_change", AT_LR, matched=True)
    beta_m = ratios(results, "beta", matched=True)
    reached = all(~np.isnan(v).any() for v in per_seed(results, "step", matched=True).values())
    loss = per_seed(results, "loss0")
    seeds = len(results[True])
    cond = f"{seeds} seeds, 8 hidden layers, lr 0.05, epochs 1-{len(grad)}"
    return [
        Claim("at the same epoch the BN network is further along: lower loss on the probe batch",
              (loss[True][:, 1:].max(axis=0) < loss[False][:, 1:].min(axis=0)).all(),
              {"loss without BN, epoch 1": loss[False][:, 1].mean(),
               "with BN": loss[True][:, 1].mean()}, cond),
        Claim("at the same epoch the BN network's gradient is several times smaller, so the "
              "unnormalised gradient change overstates the smoothing: relative to |g| the "
              "factor is a few times, not an order of magnitude",
              (grad > 2).all() and (relative < 5).all() and (absolute > 2 * relative).all(),
              {"|Δg| ratio": f"{absolute.min():.1f}-{absolute.max():.1f}",
               "|g| ratio": f"{grad.min():.1f}-{grad.max():.1f}",
               "|Δg|/|g| ratio": f"{relative.min():.1f}-{relative.max():.1f}"}, cond),
        Claim("at the same epoch, the relative gradient change |Δg|/|g| and the effective β are "
              "both smaller with BN, by factors of the same size",
              (relative > 1).all() and (beta > 1).all()
              and max(relative.max(), beta.max()) < 3 * min(relative.min(), beta.min()),
              {"|Δg|/|g| ratio": f"{relative.min():.1f}-{relative.max():.1f}",
               "β ratio": f"{beta.min():.1f}-{beta.max():.1f}"}, cond),
        Claim("at the same training loss the BN network's landscape is still smoother: relative "
              "gradient change and β both smaller, by a factor of about 2 to 4",
              reached and (rel_m > 1.5).all() and (beta_m > 1.5).all()
              and max(np.nanmax(rel_m), np.nanmax(beta_m)) < 5,
              {"targets": "/".join(f"{t:g}" for t in results[True][0]["targets"]),
               "|Δg|/|g| ratio": f"{np.nanmin(rel_m):.1f}-{np.nanmax(rel_m):.1f}",
               "β ratio": f"{np.nanmin(beta_m):.1f}-{np.nanmax(beta_m):.1f}"},
              f"{seeds} seeds, probe-batch loss first below each target"),
    ]
