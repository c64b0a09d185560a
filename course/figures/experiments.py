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
