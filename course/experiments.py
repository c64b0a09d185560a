"""Small, fast training experiments on the digits, with and without batch normalization.

Each experiment is a function returning numbers (so tests can assert the effect it shows);
course.figures.experiments draws those numbers. Every run is seeded and takes well under a second.
"""

from functools import cache

import numpy as np

from course.claims import Claim
from course.dataset import load_digits
from course.mlp import MLP
from course.optim import SGD
from course.saturation import saturation_fraction
from course.train import accuracy, train

SHALLOW = (64, 64, 64, 10)  # two hidden ReLU layers: the default network of the sweeps
DEEP_SIGMOID = (64, 64, 64, 64, 64, 64, 10)  # five hidden sigmoid layers: hard without BN
LABELS = {False: "without BN", True: "with BN"}


@cache
def digits():
    """The standardized digits (loaded once per process)."""
    return load_digits(standardize=True)


def run(batchnorm=True, sizes=SHALLOW, activation="relu", weight_scale=None, lr=0.1,
        batch_size=64, epochs=3, seed=0, make_model=None, weight_decay=0.0):
    """Train one network with SGD (momentum 0.9) on the digits; return (model, History).

    By default the network is an MLP(sizes, activation, batchnorm, weight_scale); make_model(seed)
    builds any other network instead (the MLP arguments are then ignored).
    """
    d = digits()
    model = (MLP(sizes, activation=activation, batchnorm=batchnorm, weight_scale=weight_scale,
                 seed=seed) if make_model is None else make_model(seed))
    hist = train(model, d.X_train, d.y_train, d.X_val, d.y_val, SGD(lr, weight_decay=weight_decay),
                 epochs=epochs, batch_size=batch_size, seed=seed)
    return model, hist


# ----------------------------------------------------------------------------------------------
# Seed spreads


def sd(values, axis=None):
    """Standard deviation over seeds with ddof=1 (n - 1 in the denominator): a sample estimate."""
    return np.std(values, axis=axis, ddof=1)


def spread(values):
    """'mean ± sd [min, max] (n = k)' of per-seed results, sd with ddof=1: the course's spread."""
    a = np.asarray(values, dtype=float)
    return f"{a.mean():.3f} ± {sd(a):.3f} [{a.min():.3f}, {a.max():.3f}] (n = {a.size})"


def _ms(a):
    """'mean±sd' of per-seed results (sd with ddof=1), for table cells."""
    return f"{np.mean(a):.3f}±{sd(a):.3f}"


# ----------------------------------------------------------------------------------------------
# Predicting with batch statistics: the deployment bug


def batch_dependence(model, X, example=0, others=(range(1, 32), range(100, 131))):
    """Largest change of one example's scores between two batches it is put into, predicting
    with batch statistics (train-mode arithmetic, buffers untouched) and in test mode; and
    whether that batch-statistics forward pass equals a copy's own train-mode forward pass."""
    import copy

    batches = [np.concatenate([X[example:example + 1], X[list(o)]]) for o in others]
    probe = copy.deepcopy(model).train()  # a copy, so its buffers may change
    with model.predicting("batch"):
        same_as_train = bool(np.allclose(model.forward(batches[0]), probe.forward(batches[0])))
        a, b = (model.forward(x)[0] for x in batches)  # (10,) each
    with model.predicting():
        ta, tb = (model.forward(x)[0] for x in batches)  # (10,) each
    return {"train_mode_change": float(np.abs(a - b).max()),
            "test_mode_change": float(np.abs(ta - tb).max()), "same_as_train": same_as_train}


def one_class_accuracy(model, X, y):
    """Accuracy in train mode when each batch holds all the images of one class, and nothing
    else (one batch per class): the batch statistics are that class's statistics."""
    correct = 0
    with model.predicting("batch"):
        for c in np.unique(y):
            correct += int((model.forward(X[y == c]).argmax(axis=1) == c).sum())
    return correct / len(y)


def deployment_bug(model, X, y, batch_sizes=(1, 8, 64)):
    """Accuracy in test mode and in train mode with random batches, label-sorted batches (a few
    digits each) and one-class batches; plus how many digits each label-sorted batch holds."""
    random_order = np.random.default_rng(0).permutation(len(y))
    by_class = np.argsort(y, kind="stable")  # label-sorted: consecutive batches hold few digits
    acc = {"test mode": accuracy(model, X, y)}
    digits_per_batch = {}
    for bs in batch_sizes:
        acc[f"train mode, random batches of {bs}"] = accuracy(
            model, X, y, bs, statistics="batch", order=random_order)
        if bs > 1:
            acc[f"train mode, label-sorted batches of {bs}"] = accuracy(
                model, X, y, bs, statistics="batch", order=by_class)
            digits_per_batch[bs] = [len(np.unique(y[by_class[i:i + bs]]))
                                    for i in range(0, len(y), bs)]
    counts = np.bincount(y)
    acc[f"train mode, one-class batches of {counts.min()}-{counts.max()}"] = one_class_accuracy(
        model, X, y)
    return {"experiment": "deployment_bug", "acc": acc, "digits_per_batch": digits_per_batch,
            "class_counts": counts, "batch_sizes": tuple(batch_sizes)}


def _deployment_claims(r):
    acc, sizes = r["acc"], r["batch_sizes"]
    one_class = next(v for k, v in acc.items() if "one-class" in k)
    largest = max(sizes)
    return [
        Claim("test mode is unaffected by what else is in the batch",
              acc["test mode"] > 0.9, {"test mode": acc["test mode"]}),
        Claim("batches of one give one constant answer: accuracy near one class's share",
              acc["train mode, random batches of 1"] < 0.2,
              {"batches of 1": acc["train mode, random batches of 1"]}),
        Claim(f"random batches of {largest} are nearly harmless (within 0.03 of test mode)",
              acc[f"train mode, random batches of {largest}"] > acc["test mode"] - 0.03,
              {f"random batches of {largest}": acc[f"train mode, random batches of {largest}"]}),
        Claim(f"label-sorted batches of {largest}, two or three digits each, lose about half of "
              "the accuracy",
              0.3 < acc[f"train mode, label-sorted batches of {largest}"] / acc["test mode"] < 0.7
              and max(r["digits_per_batch"][largest]) <= 3,
              {f"label-sorted batches of {largest}":
                   acc[f"train mode, label-sorted batches of {largest}"],
               "digits per batch": r["digits_per_batch"][largest]}),
        Claim("one-class batches are far worse than random batches of any size above one",
              one_class < min(acc[f"train mode, random batches of {b}"] for b in sizes
                              if b > 1) - 0.5,
              {"one-class batches": one_class}),
    ]


# ----------------------------------------------------------------------------------------------
# The running variance against the population variance, over seeds


def running_var_ratio(seeds=range(5), epochs=5, batch_size=64):
    """For the BN net trained from each seed: median over features of its first BN layer's
    running_var divided by the paper's population variance (N/(N-1) times the mean batch
    variance, batches of batch_size), and divided by the same estimate without N/(N-1), the
    control that leaves the batch variances' bias in: {"ratios", "ratios_biased": (seeds,)}."""
    from course.running_stats import population_statistics

    d = digits()
    ratios, biased = [], []
    for seed in seeds:
        model = run(True, epochs=epochs, seed=seed, batch_size=batch_size)[0]
        bn = next(b for b in model.bn if b is not None)
        for out, unbiased in ((ratios, True), (biased, False)):
            _, var = population_statistics(model, d.X_train, batch_size, unbiased=unbiased)[0]
            out.append(float(np.median(bn.running_var / var)))
    return {"experiment": "running_var_ratio", "ratios": np.array(ratios),
            "ratios_biased": np.array(biased), "N": batch_size}


def _ratio_claims(r):
    a, b, N = r["ratios"], r["ratios_biased"], r["N"]
    setup = f"first BN layer, batches of N = {N}, n = {len(a)} seeds"
    return [
        Claim(f"the running variance is (N - 1)/N = {(N - 1) / N:.3f} of the paper's population "
              "estimate on average, up to the seed-to-seed scatter of a moving average",
              abs(a.mean() - (N - 1) / N) < sd(a),
              {"mean ratio": a.mean(), "sd": sd(a), "ratios": np.round(a, 3).tolist()}, setup),
        Claim("against the same estimate without the N/(N - 1) factor (the bias left in on both "
              "sides) the ratio is 1 on average: the gap is the biased batch variance",
              abs(b.mean() - 1) < sd(b), {"mean ratio": b.mean(), "sd": sd(b)}, setup),
    ]


# ----------------------------------------------------------------------------------------------
# Sweeps


SEEDS = (0, 1, 2)  # every sweep point is trained from several seeds, so its spread can be shown


def curves(sizes=DEEP_SIGMOID, activation="sigmoid", lr=0.1, epochs=4, seeds=SEEDS):
    """Loss per step and validation accuracy per epoch, without and with BN, for each seed:
    {"hist": {bn: [History per seed]}}."""
    return {"experiment": "curves", "epochs": epochs, "lr": lr,
            "hist": {bn: [run(bn, sizes, activation, lr=lr, epochs=epochs, seed=s)[1]
                          for s in seeds] for bn in (False, True)}}


def _curves_claims(r):
    acc = {bn: np.array([h.val_acc for h in hs]) for bn, hs in r["hist"].items()}  # (seeds, ep)
    last10 = {bn: np.array([np.mean(h.loss[-10:]) for h in hs]) for bn, hs in r["hist"].items()}
    n = len(acc[True])
    return [
        Claim(f"without BN the deep sigmoid net stays near chance for all {r['epochs']} epochs "
              "(every seed)", acc[False].max() < 0.3, {"best epoch of any seed": acc[False].max()},
              f"LeCun (fan-in) init, lr {r['lr']:g}, n = {n} seeds"),
        Claim("with BN every seed is above 0.9 after two epochs", acc[True][:, 1].min() > 0.9,
              {"worst seed after 2 epochs": acc[True][:, 1].min()}, f"n = {n} seeds"),
        Claim("with BN the loss of the last 10 steps is under half the plain net's (every seed)",
              last10[True].max() < 0.5 * last10[False].min(),
              {"with BN, worst seed": last10[True].max(),
               "without BN, best seed": last10[False].min()}),
    ]


def scaled_lr(batch_size, base_lr=0.1, base_batch=64):
    """The course's one rule for a new batch size (notebooks 04 and 06): the linear scaling rule,
    learning rate proportional to the batch size, base_lr at base_batch."""
    return base_lr * batch_size / base_batch


def sweep(param, values, epochs=2, seeds=SEEDS, **fixed):
    """Final validation accuracy for each value of one run() argument and each seed:
    {"acc": {bn: array of shape (len(seeds), len(values))}, "values": values}."""
    acc = {bn: np.array([[run(bn, **{**fixed, param: v}, epochs=epochs, seed=s)[1].val_acc[-1]
                          for v in values] for s in seeds]) for bn in (False, True)}
    return {"experiment": f"{param}_sweep", "param": param, "values": tuple(values), "acc": acc}


INIT_SCALES = (0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
LEARNING_RATES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
BATCH_SIZES = (2, 4, 16, 64, 256)


def he_output_layer(seed, weight_scale=3.0):
    """The BN net with every weight at weight_scale except the output layer's (no BN after it),
    which is He-scaled: the control for "the unnormalised output layer is what fails"."""
    m = MLP(SHALLOW, batchnorm=True, weight_scale=weight_scale, seed=seed)
    m.W[-1] = MLP(SHALLOW, batchnorm=True, seed=seed).W[-1]
    return m


def init_scale_sweep(scales=INIT_SCALES, epochs=2, seeds=SEEDS):
    """Validation accuracy against the standard deviation of the initial weights, plus the BN
    net at the largest scale with only its output layer reset to He scale."""
    r = sweep("weight_scale", scales, epochs, seeds)
    r["he_output"] = np.array([run(make_model=lambda s: he_output_layer(s, scales[-1]),
                                   epochs=epochs, seed=s)[1].val_acc[-1] for s in seeds])
    return r


def lr_sweep(lrs=LEARNING_RATES, epochs=2, seeds=SEEDS):
    """Validation accuracy against the SGD learning rate."""
    return sweep("lr", lrs, epochs, seeds)


def batch_size_sweep(batch_sizes=BATCH_SIZES, epochs=2, seeds=SEEDS, base_lr=0.1):
    """Validation accuracy against batch size, each run with scaled_lr(batch size), so every run
    sees the data equally often with the same gradient noise per epoch."""
    acc = {bn: np.array([[run(bn, lr=scaled_lr(bs, base_lr), batch_size=bs, epochs=epochs,
                              seed=s)[1].val_acc[-1] for bs in batch_sizes] for s in seeds])
           for bn in (False, True)}
    return {"experiment": "batch_size_sweep", "param": "batch_size",
            "values": tuple(batch_sizes), "acc": acc}


def small_batch_recalibration(batch_sweep, batch_size=2, epochs=2, seeds=SEEDS, base_lr=0.1,
                              recal_batch=64):
    """The control for "BN fails at batch_size because train and test statistics differ": the
    sweep's BN runs at that batch size retrained, their running statistics then replaced by
    population estimates over the training set (batches of recal_batch), and evaluated again."""
    from course.running_stats import recalibrate  # running_stats trains networks of this module

    d = digits()
    before, after = [], []
    for s in seeds:
        model, hist = run(True, lr=scaled_lr(batch_size, base_lr), batch_size=batch_size,
                          epochs=epochs, seed=s)
        before.append(hist.val_acc[-1])
        after.append(accuracy(recalibrate(model, d.X_train, recal_batch, seed=s), d.X_val,
                              d.y_val))
    return {"experiment": "small_batch_recalibration", "batch_size": batch_size,
            "recal_batch": recal_batch, "before": np.array(before), "after": np.array(after),
            "plain": _at(batch_sweep, False, batch_size)}


def _recalibration_claims(r):
    gap = r["plain"].mean() - r["before"].mean()
    share = (r["after"].mean() - r["before"].mean()) / gap
    return [Claim(f"at N = {r['batch_size']}, population statistics (batches of "
                  f"{r['recal_batch']}) raise the BN net's accuracy for every seed but close less "
                  "than a third of its gap to the plain net: better test statistics are not what "
                  "it lacks most", bool(np.all(r["after"] > r["before"])) and 0 < share < 1 / 3,
                  {"BN, running statistics": r["before"].mean(),
                   "BN, population statistics": r["after"].mean(),
                   "without BN": r["plain"].mean(), "share of the gap closed": share},
                  f"n = {len(r['before'])} seeds, same runs before and after")]


def sweep_table(r):
    """The table of a sweep: one row per network, 'mean±sd' per value (sd: ddof=1 over seeds)."""
    n = len(r["acc"][True])
    lines = [f"{r['param']:11s}" + "".join(f"{v:>13g}" for v in r["values"])]
    for bn, a in r["acc"].items():
        lines.append(f"{LABELS[bn]:11s}" + "".join(f"  {_ms(a[:, j])}" for j in range(a.shape[1])))
    return "\n".join(lines) + f"\n(mean ± sd over n = {n} seeds, sd with ddof=1)"


def _at(r, bn, value):
    """Per-seed accuracies of one network at one swept value: shape (seeds,)."""
    return r["acc"][bn][:, r["values"].index(value)]


def _apart(a, b):
    """a is above b by more than the sum of their seed sds (ddof=1): the course's weak
    criterion for reading a difference between n = 3 seeds as an effect."""
    return float(np.mean(a) - np.mean(b)) > sd(a) + sd(b)


def _init_claims(r):
    m = {bn: a.mean(axis=0) for bn, a in r["acc"].items()}
    v = np.array(r["values"])
    works = {bn: v[x > 0.9] for bn, x in m.items()}
    big = _at(r, True, v[-1])
    return [
        Claim("without BN only a narrow band of scales around He's 0.18 trains above 0.9",
              set(works[False]) <= {0.1, 0.3} and len(works[False]) >= 1,
              {"scales above 0.9 without BN": works[False].tolist()}),
        Claim("with BN every scale from 0.001 to 0.3 trains above 0.9",
              np.all(m[True][v <= 0.3] > 0.9),
              {"worst mean at c <= 0.3": m[True][v <= 0.3].min()}),
        Claim("without BN the smallest and the largest scales fail to train (below 0.3)",
              np.all(m[False][(v <= 0.01) | (v >= 1)] < 0.3),
              {f"c = {c:g}": x for c, x in zip(v, m[False], strict=True) if c <= 0.01 or c >= 1}),
        Claim(f"with BN at c = {v[-1]:g}, resetting only the output layer to He scale lifts the "
              "accuracy above every seed of the unchanged net",
              r["he_output"].min() > big.max() + 0.1,
              {"unchanged": float(big.mean()), "output layer reset": float(r["he_output"].mean())},
              "n = 3 seeds each, means"),
    ]


def _lr_claims(r):
    return [
        Claim("at learning rate 1 the plain net is at chance, the BN net above 0.9",
              _at(r, False, 1.0).mean() < 0.2 < 0.9 < _at(r, True, 1.0).mean(),
              {"without BN": _at(r, False, 1.0).mean(), "with BN": _at(r, True, 1.0).mean()}),
        Claim("at learning rate 3 BN degrades badly but stays well above the plain net, which is "
              "at chance", _apart(_at(r, True, 3.0), _at(r, False, 3.0))
              and _at(r, True, 3.0).mean() < 0.6 and _at(r, False, 3.0).mean() < 0.15,
              {"with BN": _at(r, True, 3.0).mean(), "sd": sd(_at(r, True, 3.0)),
               "without BN": _at(r, False, 3.0).mean()}),
        Claim("at learning rate 0.3 the plain net is already below its 0.1 accuracy",
              _apart(_at(r, False, 0.1), _at(r, False, 0.3)),
              {"lr 0.1": _at(r, False, 0.1).mean(), "lr 0.3": _at(r, False, 0.3).mean()}),
        Claim("at learning rate 0.01 the plain net is ahead of the BN net by more than the two "
              "seed sds together", _apart(_at(r, False, 0.01), _at(r, True, 0.01)),
              {"without BN": _at(r, False, 0.01).mean(), "with BN": _at(r, True, 0.01).mean(),
               "sum of sds": sd(_at(r, False, 0.01)) + sd(_at(r, True, 0.01))}),
    ]


def _batch_claims(r):
    return [
        Claim("with batches of 2 the BN net is far below the plain net",
              _at(r, True, 2).mean() < _at(r, False, 2).mean() - 0.2,
              {"with BN": _at(r, True, 2).mean(), "without BN": _at(r, False, 2).mean()}),
        Claim("from 4 to 64 examples per batch the BN net trains above 0.9",
              all(_at(r, True, b).mean() > 0.9 for b in (4, 16, 64)),
              {f"N = {b}": _at(r, True, b).mean() for b in (4, 16, 64)}),
        Claim("at batch 64 the BN net is ahead of the plain one by more than the two seed sds",
              _apart(_at(r, True, 64), _at(r, False, 64)),
              {"with BN": _at(r, True, 64).mean(), "without BN": _at(r, False, 64).mean()}),
    ]


def saturation_by_layer(sizes=DEEP_SIGMOID, weight_scale=1.0, epochs=2, lr=0.1, seeds=SEEDS):
    """Fraction of saturated sigmoid inputs (|z| > threshold) per hidden layer of a deep sigmoid
    net, at initialisation and after training, without and with BN, for each seed; plus the
    final validation accuracy of each seed: {"by_bn": {bn: {"init", "trained": (seeds, L),
    "val_acc": (seeds,)}}}."""
    d = digits()
    out = {}
    for bn in (False, True):
        init, trained, acc = [], [], []
        for seed in seeds:
            model = MLP(sizes, activation="sigmoid", batchnorm=bn, weight_scale=weight_scale,
                        seed=seed)
            # At initialisation: a training batch, normalised as in train mode (buffers untouched).
            with model.predicting("batch"):
                model.forward(d.X_train[:256])
            init.append([saturation_fraction(z) for z in model.preacts])
            _, hist = run(make_model=lambda s, m=model: m, lr=lr, epochs=epochs, seed=seed)
            with model.predicting():  # after training: test mode on the validation set
                model.forward(d.X_val)
            trained.append([saturation_fraction(z) for z in model.preacts])
            acc.append(hist.val_acc[-1])
        out[bn] = {"init": np.array(init), "trained": np.array(trained), "val_acc": np.array(acc)}
    return {"experiment": "saturation_by_layer", "epochs": epochs, "lr": lr,
            "weight_scale": weight_scale, "by_bn": out}


def _saturation_claims(r):
    b = r["by_bn"]
    return [
        Claim("without BN more than 30 % of every layer is saturated, at init and after training",
              b[False]["init"].min() > 0.3 and b[False]["trained"].min() > 0.3,
              {"least saturated layer": min(b[False]["init"].min(), b[False]["trained"].min())},
              "every seed"),
        Claim("with BN under 1 % of every layer is saturated, at init and after training",
              b[True]["init"].max() < 0.01 and b[True]["trained"].max() < 0.01,
              {"most saturated layer": max(b[True]["init"].max(), b[True]["trained"].max())},
              "every seed"),
        Claim("with BN the accuracy is higher than without by more than the two seed sds",
              _apart(b[True]["val_acc"], b[False]["val_acc"]),
              {"with BN": b[True]["val_acc"].mean(), "without BN": b[False]["val_acc"].mean()}),
    ]


def failure_modes(curves_result, saturation_result):
    """The two plain deep sigmoid nets after the same budget (epochs and lr): the saturated one
    (weights N(0, 1)) against the LeCun-initialised one, whose signal collapses."""
    e = saturation_result["epochs"]
    collapse = np.array([h.val_acc[e - 1] for h in curves_result["hist"][False]])  # (seeds,)
    saturated = saturation_result["by_bn"][False]["val_acc"]  # (seeds,)
    return {"experiment": "failure_modes", "epochs": e, "lr": saturation_result["lr"],
            "collapse": collapse, "saturated": saturated}


def _failure_claims(r):
    return [Claim(f"after {r['epochs']} epochs at learning rate {r['lr']:g}, the saturated plain "
                  "net is ahead of the plain net whose signal collapses",
                  _apart(r["saturated"], r["collapse"]),
                  {"saturated": r["saturated"].mean(), "signal collapse": r["collapse"].mean()},
                  f"n = {len(r['saturated'])} seeds each, same budget")]


_CLAIMS = {"deployment_bug": _deployment_claims, "running_var_ratio": _ratio_claims,
           "curves": _curves_claims,
           "weight_scale_sweep": _init_claims, "lr_sweep": _lr_claims,
           "batch_size_sweep": _batch_claims, "saturation_by_layer": _saturation_claims,
           "failure_modes": _failure_claims, "small_batch_recalibration": _recalibration_claims}


def claims(result):
    """The claims notebook 04 makes from one experiment's result, thresholds included."""
    return _CLAIMS[result["experiment"]](result)
