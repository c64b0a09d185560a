"""The weight-decay demo: the norm of a BN-normalised layer's weights and its effective learning
rate over SGD steps, for a chosen learning rate and weight decay (course.scale_invariance)."""

import numpy as np

from course.figures.demo import Choice, Demo
from course.scale_invariance import LEARNING_RATES, WEIGHT_DECAYS, norm_grid


def _draw_weight_decay(fig, lr=0.5, weight_decay=0.01):
    """||W|| and lr / ||W||^2 per step, with the same learning rate without weight decay dashed.
    Returns update(lr, weight_decay)."""
    fig.set_layout_engine("none")  # fixed margins and axes: a redraw moves only the curves
    fig.set_size_inches(10, 3.6)
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"left": 0.07, "right": 0.98, "bottom": 0.15,
                                               "top": 0.82, "wspace": 0.22})
    grid = norm_grid()
    steps = np.arange(len(next(iter(grid.values()))[0]))  # (steps + 1,) step 0: the start
    lines = {}
    for ax, k, label in ((ax1, 0, "‖W‖"), (ax2, 1, "effective learning rate lr / ‖W‖²")):
        lines[k, "plain"], = ax.plot(steps, steps * 0.0 + 1, "--", color="0.4",
                                     label="same lr, no weight decay")
        lines[k, "wd"], = ax.plot(steps, steps * 0.0 + 1, color="C3", lw=2,
                                  label="with weight decay")
        ax.set_yscale("log")
        ax.minorticks_off()  # log-axis minor ticks would dominate the redraw time
        ax.set(xlabel="SGD step", title=label, xlim=(0, steps[-1]))
    ax1.set_ylim(0.5, 20)
    ax1.set_yticks([0.5, 1, 2, 5, 10, 20], ["0.5", "1", "2", "5", "10", "20"])
    ax2.set_ylim(1e-3, 1.0)
    ax2.set_yticks([1e-3, 1e-2, 1e-1, 1], ["0.001", "0.01", "0.1", "1"])
    ax1.legend(loc="upper left", fontsize=8)
    title = fig.suptitle("", fontsize=10)

    def update(lr=0.5, weight_decay=0.01):
        for key, wd in (("plain", 0.0), ("wd", weight_decay)):
            norms, eff = grid[lr, wd]
            lines[0, key].set_ydata(norms)
            lines[1, key].set_ydata(eff)
        norms, eff = grid[lr, weight_decay]
        title.set_text(f"lr {lr}, weight decay {weight_decay}: after {len(norms) - 1} steps ‖W‖ = "
                       f"{norms[-1]:.2f}, effective lr {eff[-1]:.3f} (without decay "
                       f"{grid[lr, 0.0][1][-1]:.3f})")

    update(lr, weight_decay)
    update.artists = [*lines.values(), title]
    return update


WEIGHT_DECAY_DEMO = Demo(
    name="weight_decay",
    draw=_draw_weight_decay,
    sliders={"lr": Choice(LEARNING_RATES, 0.5, "learning rate", slider=True),
             "weight_decay": Choice(WEIGHT_DECAYS, 0.01, "weight decay", slider=True)},
    question="The loss does not depend on ‖W‖, yet the learning rate you set is not the one the "
             "layer feels: which weight decay keeps the effective learning rate from decaying at "
             "lr 0.5, and what happens to it when you raise the learning rate?",
)
