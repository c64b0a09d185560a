"""Loss range, relative gradient change and effective β along the gradient, with and without BN,
per epoch and at matched training loss (notebook 07)."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator

from course.smoothness import AT_LR, per_seed

PANELS = (  # (key, step-size column, title, y-label)
    ("loss_spread", None, "loss range along −g", "max − min of L(w − ηg)"),
    ("rel_change", AT_LR, "relative gradient change", "‖∇L(w − ηg) − g‖ / ‖g‖, η = lr"),
    ("beta", None, "effective β-smoothness", "max over η of ‖Δg‖ / (η‖g‖)"),
)
STYLE = {False: dict(marker="s", linestyle="--", color="C0", label="without BN"),
         True: dict(marker="o", linestyle="-", color="C1", label="with BN")}


def _band(ax, x, values, bn):
    """Mean over seeds with a min-max band."""
    ax.plot(x, np.nanmean(values, axis=0), **STYLE[bn])
    ax.fill_between(x, np.nanmin(values, axis=0), np.nanmax(values, axis=0), alpha=0.2,
                    color=STYLE[bn]["color"])


def _log_ticks(ax):
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(LogLocator(subs="all"))
    ax.yaxis.set_minor_formatter(plt.NullFormatter())


def plot_landscape(results):
    """Top row: per epoch (0 = initialisation); bottom row: where the probe batch's loss first fell
    below each target. Lines are the mean over seeds, bands their min-max; results from
    course.smoothness.compare."""
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.4), constrained_layout=True)
    targets = results[True][0]["targets"]
    for row, matched in enumerate((False, True)):
        for ax, (key, column, title, ylabel) in zip(axes[row], PANELS, strict=True):
            for bn, values in per_seed(results, key, column, matched).items():
                _band(ax, np.arange(values.shape[1]), values, bn)
            _log_ticks(ax)
            ax.set(title=title, ylabel=ylabel)
            if matched:
                ax.set_xticks(range(len(targets)), [f"< {t:g}" for t in targets])
                ax.set_xlabel("probe-batch loss first below")
            else:
                ax.set_xticks(range(values.shape[1]))
                ax.set_xlabel("epoch (0 = initialisation)")
    handles = [plt.Line2D([], [], **STYLE[bn]) for bn in (False, True)]
    handles.append(Patch(color="0.6", alpha=0.4,
                         label=f"band: min–max over {len(results[True])} seeds"))
    axes[0, 0].legend(handles=handles, fontsize=8)
    fig.suptitle("same epoch (top) and same training loss (bottom)", fontsize=10)
    return fig
