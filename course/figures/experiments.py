"""Plots of the training experiments of notebook 04 (course.experiments computes the numbers)."""

import numpy as np

from course.saturation import SATURATION_THRESHOLD

LABELS = {False: "without BN", True: "with BN"}


def plot_curves(axes, hists):
    """Loss per step (left) and validation accuracy per epoch (right)."""
    for bn, h in hists.items():
        axes[0].plot(h.loss, lw=1, label=LABELS[bn])
        axes[1].plot(np.arange(1, len(h.val_acc) + 1), h.val_acc, "o-", label=LABELS[bn])
    axes[0].set(xlabel="SGD step", ylabel="training loss", title="loss per mini-batch")
    axes[1].set(xlabel="epoch", ylabel="validation accuracy", ylim=(0, 1),
                title="validation accuracy (test mode)")
    axes[1].legend()


def plot_sweep(ax, values, result, xlabel, log=True):
    """Final validation accuracy against one swept setting, without and with BN: the mean over
    seeds, with a band from the worst to the best seed."""
    for bn, acc in result.items():  # acc: (seeds, values)
        line, = ax.plot(values, acc.mean(axis=0), "o-",
                        label=f"{LABELS[bn]} (mean of {len(acc)} seeds)")
        ax.fill_between(values, acc.min(axis=0), acc.max(axis=0), color=line.get_color(),
                        alpha=0.2, lw=0)
    if log:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel="validation accuracy", ylim=(0, 1))
    ax.axhline(0.1, color="gray", ls=":", lw=1)  # chance level: 10 classes
    ax.legend()


def plot_saturation(ax, result):
    """Saturated fraction per hidden layer, at initialisation and after training."""
    for bn, r in result.items():
        layers = np.arange(1, len(r["init"]) + 1)
        ax.plot(layers, r["init"], "o--", label=f"{LABELS[bn]}, at init")
        ax.plot(layers, r["trained"], "s-", label=f"{LABELS[bn]}, trained "
                                                   f"(val acc {r['val_acc']:.2f})")
    ax.set_xticks(layers)
    ax.set(xlabel="hidden layer", ylabel=f"fraction with |z| > {SATURATION_THRESHOLD:g}",
           ylim=(-0.02, 1), title="saturated sigmoid inputs per layer")
    ax.legend(fontsize=8)


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
    styles = {True: ("o-", "γ = 0 (block starts as identity)"), False: ("s--", "γ = 1")}
    for j, (ax, blocks) in enumerate(zip(axes, depths, strict=True)):
        for zero, (style, label) in styles.items():
            a = acc[zero][:, j]  # (seeds, epochs)
            steps = steps_per_epoch * np.arange(1, a.shape[1] + 1)
            line, = ax.plot(steps, a.mean(axis=0), style, label=label)
            ax.fill_between(steps, a.min(axis=0), a.max(axis=0), color=line.get_color(), alpha=0.2)
        ax.set(xlabel="SGD steps (22 per epoch)", title=f"{blocks} residual blocks", xticks=steps)
    axes[0].set_ylabel("validation accuracy")
    axes[0].legend(fontsize=8, title=f"mean, band min–max of {acc[True].shape[0]} seeds",
                   title_fontsize=8)
    return fig
