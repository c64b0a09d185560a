"""Why normalise: how far a deep sigmoid network's units sit into the flat tails of the sigmoid.

A plain MLP (affine -> [standardise] -> sigmoid, repeated, then affine -> softmax) whose weights
are drawn once and multiplied by a scale, so every figure compares the same network.
"""

from functools import cache

import numpy as np

from course.batchnorm import DEFAULT_EPS, batchnorm_backward, batchnorm_forward
from course.claims import Claim
from course.dataset import load_digits
from course.layers import (
    affine_backward,
    affine_forward,
    sigmoid,
    sigmoid_backward,
    sigmoid_forward,
    sigmoid_grad,
    softmax_loss,
)

SATURATION_THRESHOLD = 4.0  # |z| > 4  <=>  sigma'(z) < 0.018, under 1/14 of its maximum 1/4


def saturation_fraction(z, threshold=SATURATION_THRESHOLD):
    """Fraction of all entries of z whose magnitude exceeds the threshold (both tails)."""
    return float(np.mean(np.abs(z) > threshold))


def saturation(z):
    """(fraction of saturated units, mean slope sigma'(z)) for pre-activations z."""
    z = np.asarray(z, dtype=float)
    return saturation_fraction(z), float(np.mean(sigmoid_grad(z)))


def standardized_sample(n=4000, seed=0):
    """A fixed bimodal feature, standardised: two groups that sat on either side of a sigmoid."""
    rng = np.random.default_rng(seed)
    z = np.concatenate([rng.normal(-3.0, 1.0, n // 2), rng.normal(3.0, 1.0, n - n // 2)])  # (n,)
    return (z - z.mean()) / z.std()  # (n,)


def standardize(x, eps=DEFAULT_EPS):
    """Each feature (column) of x shifted to mean 0 and scaled to variance ~1 over the batch."""
    mu = x.mean(axis=0)  # (D,)
    var = x.var(axis=0)  # (D,)  biased (divide by N), as batch normalization does
    return (x - mu) / np.sqrt(var + eps)  # (N, D)


def init_weights(sizes, seed=0):
    """Unit-scale weights N(0, 1/fan_in) for layer sizes [d_in, h, ..., n_classes]."""
    rng = np.random.default_rng(seed)
    shapes = zip(sizes[:-1], sizes[1:], strict=True)
    return [rng.normal(size=(m, n)) / np.sqrt(m) for m, n in shapes]  # (fan_in, fan_out) each


@cache
def demo_data(n=256, depth=6, width=64, seed=0):
    """The fixed batch of standardised digits and the unit-scale weights of notebook 01."""
    d = load_digits(standardize=True)
    weights = init_weights([64] + [width] * depth + [10], seed=seed)
    return d.X_train[:n], d.y_train[:n], weights


NORMALIZE = (False, "center", True)  # none; subtract each unit's batch mean; standardise


def mlp_forward_backward(X, y, weights, scale=1.0, shift=0.0, normalize=False):
    """One forward and backward pass; returns each hidden layer's sigmoid input and gradients.

    Hidden layer l computes z = a @ W_l + shift with W_l = scale * V_l (V_l: the unit-scale
    `weights`), then, before the sigmoid: nothing (normalize=False), subtracts each unit's batch
    mean without rescaling ("center"), or standardises each unit over the batch (True: batch
    normalization with gamma = 1, beta = 0). `shift` is the same bias on every unit. The
    gradients are d loss / d W_l for the weights the network uses, W_l = scale * V_l.
    """
    if normalize not in NORMALIZE:
        raise ValueError(f"normalize must be one of {NORMALIZE}, not {normalize!r}")
    a, caches, zs = X, [], []
    for W in weights[:-1]:
        z, aff = affine_forward(a, scale * W, np.full(W.shape[1], shift))  # (N, H)
        bn = None
        if normalize is True:
            H = W.shape[1]
            z, bn = batchnorm_forward(z, np.ones(H), np.zeros(H), {"mode": "train"})
        elif normalize == "center":
            z = z - z.mean(axis=0)  # (N, H)  offsets removed, spread kept
        zs.append(z)
        a, sig = sigmoid_forward(z)  # (N, H)
        caches.append((aff, bn, sig))
    scores, aff_out = affine_forward(a, scale * weights[-1], np.zeros(weights[-1].shape[1]))
    loss, dscores = softmax_loss(scores, y)

    da, dW_out, _ = affine_backward(dscores, aff_out)
    grads = [dW_out]  # d loss / d W_l: affine_backward differentiates w.r.t. scale * V_l
    for aff, bn, sig in reversed(caches):
        dz = sigmoid_backward(da, sig)  # (N, H)
        if bn is not None:
            dz, _, _ = batchnorm_backward(dz, bn)
        elif normalize == "center":
            dz = dz - dz.mean(axis=0)  # (N, H)  the backward pass of subtracting the mean
        da, dW, _ = affine_backward(dz, aff)
        grads.append(dW)
    grads.reverse()
    grad_norms = np.array([np.linalg.norm(g) for g in grads])  # (L + 1,)
    # Relative to the weights it would update: the size of a gradient-descent step of W_l.
    weight_norms = np.array([np.linalg.norm(scale * W) for W in weights])  # (L + 1,)
    return {"z": zs, "grads": grads, "loss": loss, "grad_norms": grad_norms,
            "rel_grad_norms": grad_norms / weight_norms}


def layer_spread(zs):
    """Per layer, the median over units of each unit's standard deviation over the batch."""
    return np.array([np.median(z.std(axis=0)) for z in zs])  # (L,)


def layer_offsets(zs):
    """Per layer, the standard deviation over units of each unit's batch mean: how far apart the
    units sit, which a histogram pooling all units draws as if it were spread within a unit."""
    return np.array([z.mean(axis=0).std() for z in zs])  # (L,)


SCALES = (1.0, 4.0, 8.0)  # notebook 01's weight scales: small, "gain-corrected" 1/sig'(0), large


def scale_study(X, y, weights, scales=SCALES):
    """The notebook-01 network at each weight scale, plain, centred only, and standardised:
    {variant: {scale: mlp_forward_backward result}} plus per-variant saturation tables."""
    study = {v: {s: mlp_forward_backward(X, y, weights, scale=s, normalize=n) for s in scales}
             for v, n in (("plain", False), ("centred", "center"), ("standardised", True))}
    study["saturated"] = {v: {s: np.array([saturation_fraction(z) for z in r["z"]])
                              for s, r in study[v].items()}
                          for v in ("plain", "centred", "standardised")}
    # The control for "the output layer grows too": only the hidden weights scaled by c.
    study["standardised, output at c = 1"] = {
        s: mlp_forward_backward(X, y, [s * V for V in weights[:-1]] + [weights[-1]],
                                normalize=True) for s in scales}
    # The control for "offsets, not spread": the plain net's own z with each unit's mean removed.
    study["saturated"]["plain, offsets removed"] = {
        s: np.array([saturation_fraction(z - z.mean(axis=0)) for z in r["z"]])
        for s, r in study["plain"].items()}
    return study


def standardised_gain(study, scale):
    """Per hidden layer, the standardised net's |dW_l| / |W_l| over the plain net's at one scale."""
    rel = [study[v][scale]["rel_grad_norms"][:-1] for v in ("standardised", "plain")]  # (6,) each
    return rel[0] / rel[1]  # (6,)


def claims(study):
    """What notebook 01 reads from scale_study: the two failure modes and what fixes each."""
    plain, sat = study["plain"], study["saturated"]
    s1, s8 = plain[1.0], plain[8.0]
    spread1, spread8 = layer_spread(s1["z"]), layer_spread(s8["z"])
    offsets8 = layer_offsets(s8["z"])
    ratio = {s: r["grad_norms"][0] / r["grad_norms"][-1] for s, r in plain.items()}
    rel = {s: r["rel_grad_norms"][:-1] for s, r in study["standardised"].items()}  # hidden
    depth_flat = max(r.max() / r.min() for r in rel.values())
    inv_c = {s: float(np.median(rel[s] / rel[1.0]) * s) for s in rel if s != 1.0}
    fixed_out = {s: r["rel_grad_norms"][:-1]
                 for s, r in study["standardised, output at c = 1"].items()}
    inv_c2 = {s: float(np.median(fixed_out[s] / fixed_out[1.0]) * s**2) for s in rel if s != 1.0}
    gain = {s: standardised_gain(study, s) for s in (1.0, 8.0)}  # (6,) each, hidden layers
    return [
        Claim("at scale 1 almost nothing saturates, but the spread collapses layer by layer",
              sat["plain"][1.0].max() < 0.01 and spread1[-1] < 0.01 * spread1[0],
              {"most saturated layer": sat["plain"][1.0].max(),
               "spread layer 6 / layer 1": spread1[-1] / spread1[0]}),
        Claim("at scale 8 the spread within a unit is not kept: it falls over the six layers",
              spread8[-1] < spread8[0] / 5, {"spread layer 1": spread8[0],
                                             "spread layer 6": spread8[-1]}),
        Claim("at scale 8 the units of layers 2-6 sit far apart: the std of their means is "
              "larger than the spread within a unit",
              np.all(offsets8[1:] > spread8[1:]),
              {"smallest std of unit means, layers 2-6": offsets8[1:].min(),
               "largest spread within a unit, layers 2-6": spread8[1:].max()}),
        Claim("in the plain net at scales 4 and 8, most of the saturation of layers 2-6 is "
              "offsets: the same pre-activations minus each unit's batch mean keep under a "
              "quarter of it", all(sat["plain, offsets removed"][s][1:].sum()
                                    < 0.25 * sat["plain"][s][1:].sum() for s in (4.0, 8.0)),
              {f"{v}, scale {s:g}": sat[v][s][1:].mean()
               for s in (4.0, 8.0) for v in ("plain", "plain, offsets removed")},
              "saturated fraction, mean over layers 2-6"),
        Claim("a net that only centres before every sigmoid is (almost) unsaturated in layers "
              "2-6 at scale 4, and at scale 8 keeps less than half the plain net's saturation "
              "there: the rest is spread within units, which only the division removes",
              sat["centred"][4.0][1:].max() < 0.02
              and sat["centred"][8.0][1:].mean() < 0.5 * sat["plain"][8.0][1:].mean()
              and layer_spread(study["centred"][8.0]["z"])[1:].min() > 2,
              {"centred, scale 4, layers 2-6 (max)": sat["centred"][4.0][1:].max(),
               "centred, scale 8, layers 2-6 (mean)": sat["centred"][8.0][1:].mean(),
               "plain, scale 8, layers 2-6 (mean)": sat["plain"][8.0][1:].mean(),
               "centred, scale 8, smallest spread in layers 2-6":
                   layer_spread(study["centred"][8.0]["z"])[1:].min()}),
        Claim("layer 1's gradient, relative to the output layer's, is smallest where nothing "
              "saturates: over ten times smaller at scale 1 than at scales 4 and 8",
              ratio[1.0] < min(ratio[s] for s in ratio if s != 1.0) / 10,
              {f"|dW_1| / |dW_out| at scale {s:g}": r for s, r in ratio.items()}),
        Claim("at scale 1 standardising rescues the gradient: every hidden layer's relative "
              "gradient grows, layer 1's over a thousandfold",
              gain[1.0].min() > 1 and gain[1.0][0] > 1000,
              {f"layer {l}": g for l, g in enumerate(gain[1.0], 1)},
              "standardised / plain, |dW_l| / |W_l|"),
        Claim("at scale 8 it is no rescue: the standardised net's relative gradient is smaller "
              "than the plain net's in layers 2-6, and layer 1's grows less than twofold",
              np.all(gain[8.0][1:] < 1) and 1 < gain[8.0][0] < 2,
              {f"layer {l}": g for l, g in enumerate(gain[8.0], 1)},
              "standardised / plain, |dW_l| / |W_l|"),
        Claim("standardised, every hidden layer gets about the same relative gradient "
              "(no decay with depth)", depth_flat < 1.3,
              {"largest max / min over the hidden layers": depth_flat}),
        Claim("standardised, the hidden layers' relative gradient falls like 1/c as the weights "
              "grow", all(abs(v - 1) < 0.1 for v in inv_c.values()),
              {f"c x (scale {s:g} / scale 1)": v for s, v in inv_c.items()},
              "median over the hidden layers; 1 means exactly 1/c"),
        Claim("with the output layer kept at c = 1, it falls like 1/c^2: a standardised "
              "layer's gradient shrinks like 1/c while its weights grow like c",
              all(abs(v - 1) < 0.1 for v in inv_c2.values()),
              {f"c^2 x (scale {s:g} / scale 1)": v for s, v in inv_c2.items()},
              "only the hidden weights scaled; median over the hidden layers"),
    ]


def train_recording(X, y, weights, steps, lr, layer, scale=1.0, normalize=False, batch=128,
                    seed=0):
    """Plain SGD on the weights the network uses, W_l = scale * V_l; returns the new unit-scale
    weights V_l and `layer`'s sigmoid input after each step.

    The recorded pre-activations are always computed on the same fixed batch X[:batch], so any
    change between steps is caused by the weights moving, not by new data.
    """
    rng = np.random.default_rng(seed)
    W = [scale * V for V in weights]  # the weights the network uses
    probe = X[:batch]

    def probe_z():
        return mlp_forward_backward(probe, y[:batch], W, 1.0, normalize=normalize)["z"]

    record = [probe_z()[layer]]
    for _ in range(steps):
        idx = rng.choice(len(y), size=batch, replace=False)
        grads = mlp_forward_backward(X[idx], y[idx], W, 1.0, normalize=normalize)["grads"]
        W = [w - lr * g for w, g in zip(W, grads, strict=True)]
        record.append(probe_z()[layer])
    return [w / scale for w in W], record


def drift_study(X, y, weights, steps=30, lr=2.0, layer=3, scale=2.0):
    """Notebook 01's drift experiment: train_recording of the plain and the standardised net;
    per net the record (steps + 1, batch, units), how far each unit's mean moved (median over
    units, absolute, relative to the initial spread, and in the first 5 steps) and the loss on
    all of X after training."""
    out = {"experiment": "drift", "steps": steps, "lr": lr, "scale": scale}
    for name, norm in (("plain", False), ("standardised", True)):
        trained, record = train_recording(X, y, weights, steps, lr, layer, scale, norm)
        rec = np.array(record)  # (steps + 1, batch, units)
        means, stds = rec.mean(axis=1), rec.std(axis=1)  # (steps + 1, units) each
        moved = np.abs(means[-1] - means[0])  # (units,)
        out[name] = {"record": rec, "initial_spread": float(np.median(stds[0])),
                     "moved": float(np.median(moved)),
                     "moved_rel": float(np.median(moved / stds[0])),
                     "early": float(np.median(np.abs(means[5] - means[0]))),
                     "loss": mlp_forward_backward(X, y, trained, scale, normalize=norm)["loss"]}
    return out


def drift_claims(d):
    """What notebook 01 reads from drift_study."""
    p, s = d["plain"], d["standardised"]
    return [
        Claim("the plain net's unit means moved by more than 3 initial stds, but the spread had "
              "collapsed, so in absolute terms the move is small, most of it in the first 5 steps",
              p["moved_rel"] > 3 and p["moved"] < 0.5 and p["early"] > p["moved"] / 2,
              {"moved / initial std": p["moved_rel"], "moved": p["moved"],
               "in the first 5 steps": p["early"], "initial spread": p["initial_spread"]},
              "medians over the units of layer 4"),
        Claim(f"the plain net learned nothing in {d['steps']} steps: its loss is that of a "
              "uniform guess, ln 10", abs(p["loss"] - np.log(10)) < 0.05, {"loss": p["loss"]}),
        Claim("the standardised net's layer-4 inputs keep mean 0 and variance 1 while its loss "
              "falls", s["moved"] < 1e-6 and s["loss"] < 0.5 * np.log(10),
              {"moved": s["moved"], "loss": s["loss"]}),
    ]


def linear_r2(x, y):
    """R^2 of the best straight-line fit y ~ a x + b, per column (how linear y is in x)."""
    xc, yc = x - x.mean(axis=0), y - y.mean(axis=0)  # (N, D)
    slope = (xc * yc).sum(axis=0) / (xc**2).sum(axis=0)  # (D,)
    resid = yc - slope * xc  # (N, D)
    return 1 - (resid**2).sum(axis=0) / (yc**2).sum(axis=0)  # (D,)


def and_readout(gammas, seed=1):
    """What gamma changes for a fixed next layer: two units, each the standardised two-group
    feature of standardized_sample times gamma, read by a next layer that sums their sigmoid
    outputs with fixed weights (1, 1) and thresholds the sum (the best threshold per gamma, over
    every cut) to say "both in their upper group". Returns {gamma: (share of one unit's output
    variance that lies between its groups, errors of that readout out of len(sample))}."""
    x1 = standardized_sample(seed=0)  # (n,) groups: first half lower, second half upper
    n = len(x1)
    upper1 = np.arange(n) >= n // 2
    perm = np.random.default_rng(seed).permutation(n)
    x2, upper2 = standardized_sample(seed=seed)[perm], upper1[perm]  # an independent feature
    both = upper1 & upper2
    out = {}
    for g in gammas:
        s1 = sigmoid(g * x1)  # (n,)
        within = 0.5 * (s1[upper1].var() + s1[~upper1].var())  # equal group sizes
        total = sigmoid(g * x1) + sigmoid(g * x2)  # (n,) the next layer's fixed sum
        out[g] = (float(1 - within / s1.var()), best_threshold_errors(total, both))
    return out


def best_threshold_errors(score, positive):
    """Fewest errors of the rule "positive iff score > t" over every threshold t (a count)."""
    order = np.argsort(score, kind="stable")
    pos = positive[order].astype(int)  # (n,) labels from the lowest score up
    # t just above the k lowest scores: the positives among them and the negatives above err.
    missed = np.concatenate([[0], np.cumsum(pos)])  # (n + 1,)
    false = (len(pos) - pos.sum()) - np.concatenate([[0], np.cumsum(1 - pos)])  # (n + 1,)
    valid = np.concatenate([[True], np.diff(score[order]) > 0, [True]])  # cut between ties: no
    return int((missed + false)[valid].min())


def and_readout_claims(r):
    """What notebook 02 reads from and_readout (gammas 1 and 5 among its keys)."""
    (share1, err1), (share5, err5) = r[1.0], r[5.0]
    return [Claim("a larger gamma makes each unit's output more nearly 0 or 1, and a fixed next "
                  "layer that sums two units errs at least three times less often at gamma 5 "
                  "than at gamma 1", share5 > share1 and err5 < err1 / 3,
                  {"between-group share, gamma 1": share1, "between-group share, gamma 5": share5,
                   "errors, gamma 1": err1, "errors, gamma 5": err5}, "errors out of 4000")]
