"""Plots of the training experiments of notebook 04 (course.experiments computes the numbers).

One colour per network throughout: without BN blue (C0), with BN red (C1); line styles and
markers tell the other conditions apart, so colour never carries meaning alone."""

import numpy as np
from matplotlib.ticker import MaxNLocator

from course.experiments import LABELS, sd
from course.saturation import SATURATION_THRESHOLD

COLORS = {False: "C0", True: "C1"}
CHANCE = 0.1  # ten classes


def _chance(ax, vertical=False):
    """The chance level, labelled (it goes into the legend)."""
    line = ax.axvline if vertical else ax.axhline
    line(CHANCE, color="gray", ls=":", lw=1, label="chance (10 classes)")


def plot_curves(axes, result):
    """Loss per step of every seed (left) and validation accuracy per epoch, mean ± sd over
    seeds (right)."""
    for bn, hists in result["hist"].items():
        for k, h in enumerate(hists):
            axes[0].plot(h.loss, lw=0.8, alpha=0.6, color=COLORS[bn],
                         ls="-" if bn else "--", label=LABELS[bn] if k == 0 else None)
        acc = np.array([h.val_acc for h in hists])  # (seeds, epochs)
        epochs = np.arange(1, acc.shape[1] + 1)
        axes[1].errorbar(epochs, acc.mean(axis=0), sd(acc, axis=0), color=COLORS[bn],
                         marker="o" if bn else "s", ls="-" if bn else "--", capsize=3,
                         label=f"{LABELS[bn]} (mean ± sd, n = {len(acc)})")
    n = len(next(iter(result["hist"].values())))
    axes[0].set(xlabel="SGD step", ylabel="training loss", title=f"loss per mini-batch ({n} seeds)")
    axes[0].legend()
    _chance(axes[1])
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1),
                title="validation accuracy (test mode)")
    axes[1].legend(fontsize=8)


def plot_sweep(ax, result, xlabel, log=True):
    """Final validation accuracy against one swept setting, without and with BN: the mean over
    seeds with a band of ± one sd (ddof=1), the spread the tables print."""
    values = result["values"]
    for bn, acc in result["acc"].items():  # acc: (seeds, values)
        mean, s = acc.mean(axis=0), sd(acc, axis=0)
        ax.plot(values, mean, "o-" if bn else "s--", color=COLORS[bn],
                label=f"{LABELS[bn]} (mean ± sd, n = {len(acc)})")
        ax.fill_between(values, mean - s, mean + s, color=COLORS[bn], alpha=0.2, lw=0)
    if "he_output" in result:  # the control of init_scale_sweep, at its largest scale
        acc = result["he_output"]  # (seeds,)
        ax.errorbar(values[-1], acc.mean(), yerr=sd(acc), marker="*", ms=11, mfc="white",
                    color=COLORS[True], capsize=3, ls="none",
                    label=f"{LABELS[True]}, output layer reset to He (mean ± sd, n = {len(acc)})")
    if log:
        ax.set_xscale("log")
    _chance(ax)
    ax.set(xlabel=xlabel, ylabel="validation accuracy", ylim=(0, 1))
    ax.legend(fontsize=8)


def plot_saturation(ax, result):
    """Saturated fraction per hidden layer (mean over seeds), at initialisation and after
    training; the with-BN lines sit on zero, drawn slightly apart so both stay visible."""
    for bn, r in result["by_bn"].items():
        layers = np.arange(1, r["init"].shape[1] + 1)
        for k, (when, marker, ls) in enumerate((("init", "o", "--"), ("trained", "s", "-"))):
            ax.plot(layers + (k - 0.5) * 0.12, r[when].mean(axis=0), marker=marker, ls=ls,
                    color=COLORS[bn], mfc="none" if when == "init" else COLORS[bn],
                    label=f"{LABELS[bn]}, " + ("at init" if when == "init" else
                                               f"trained (val acc {r['val_acc'].mean():.2f})"))
    ax.set_xticks(layers)
    ax.set(xlabel="hidden layer", ylabel=f"fraction with |z| > {SATURATION_THRESHOLD:g}",
           ylim=(-0.02, 1), title="saturated sigmoid inputs per layer (mean over seeds)")
    ax.legend(fontsize=8)


def plot_deployment(ax, result):
    """Validation accuracy of each way of predicting, as horizontal bars."""
    names = list(result["acc"])[::-1]
    ax.barh(names, [result["acc"][k] for k in names], color="C1")
    _chance(ax, vertical=True)
    ax.set(xlabel="validation accuracy", xlim=(0, 1), title="predicting in train mode")
    ax.legend(loc="lower right", fontsize=8)


def plot_strips(values, title, figsize=(7, 2.8)):
    """One row per set-up: each seed's value as a marker, the mean as a black bar (notebooks 06
    and 07); values {label: (seeds,)}."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize)
    for i, v in enumerate(values.values()):
        ax.plot(v, np.full(len(v), i), "o", alpha=0.7)
        ax.plot(np.mean(v), i, "k|", markersize=18)
    ax.set(yticks=range(len(values)), yticklabels=list(values), xlabel="validation accuracy",
           title=title)
    ax.invert_yaxis()
    return fig


def plot_horizon(acc, depths, steps_per_epoch):
    """Validation accuracy after each epoch, against SGD steps, one panel per depth, for the last
    BN of each residual branch at γ = 0 and γ = 1: mean over seeds and min-max band; acc from
    course.residual.depth_sweep."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(depths), figsize=(4.2 * len(depths), 3), sharey=True,
                             constrained_layout=True)
    # Baseline (γ = 1) dashed squares in C0, treatment (γ = 0) solid circles in C1: the encoding of
    # the notebook's other baseline-vs-treatment figures (course.figures.smoothness.STYLE).
    styles = {False: ("s--", "C0", "γ = 1"), True: ("o-", "C1", "γ = 0 (block starts as identity)")}
    for j, (ax, blocks) in enumerate(zip(axes, depths, strict=True)):
        for zero, (style, color, label) in styles.items():
            a = acc[zero][:, j]  # (seeds, epochs)
            steps = steps_per_epoch * np.arange(1, a.shape[1] + 1)
            ax.plot(steps, a.mean(axis=0), style, color=color, label=label)
            ax.fill_between(steps, a.min(axis=0), a.max(axis=0), color=color, alpha=0.2)
        ax.set(xlabel="SGD steps (22 per epoch)", title=f"{blocks} residual blocks", xticks=steps)
    axes[0].set_ylabel("validation accuracy")
    axes[0].legend(fontsize=8, title=f"mean, band min–max of {acc[True].shape[0]} seeds",
                   title_fontsize=8)
    return fig
