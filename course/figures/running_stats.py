"""Interactive demo: the running estimates of one real feature over training steps (notebook 04)."""

from functools import cache

import numpy as np

from course.batchnorm import DEFAULT_MOMENTUM
from course.dataset import load_digits
from course.figures.demo import Demo, IntSlider, Slider
from course.running_stats import ema_trajectory, steps_to_forget

DEMO_FEATURE = 20  # pixel (2, 4) of the 8x8 digits: mean about 7, variance about 38
DEMO_STEPS = 300


@cache
def _demo_feature():
    """One raw pixel of the training digits (a feature a BN layer could see): shape (N,)."""
    return load_digits().X_train[:, DEMO_FEATURE].copy()  # (N,)


def _draw_running_stats(fig, momentum=DEFAULT_MOMENTUM, batch_size=32):
    """Running mean and variance of one pixel over training steps, against the population.
    Returns update(momentum, batch_size) for the same figure."""
    x = _demo_feature()  # (N,)
    steps = np.arange(DEMO_STEPS + 1)
    # Fixed margins instead of the style's automatic layout, which lays all text out twice.
    fig.set_layout_engine("none")
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.25, top=0.82, wspace=0.22)
    axes = fig.subplots(1, 2)
    panels = []
    # Fixed y ranges (a pixel is 0..16, so a batch variance is at most 64): the axes stay put
    # while the sliders move, and only the curves are redrawn.
    for ax, pop, label, top in ((axes[0], x.mean(), "mean", 16.0),
                                (axes[1], x.var(), "variance", 70.0)):
        (batch_line,) = ax.plot([], [], ".", ms=2, alpha=0.35)
        (run_line,) = ax.plot([], [], lw=2)
        pop_line = ax.axhline(pop, color="k", ls="--", lw=1)
        ax.set_xlabel("training step")
        ax.set(xlim=(-0.02 * DEMO_STEPS, 1.02 * DEMO_STEPS), ylim=(-0.02 * top, 1.02 * top))
        panels.append((ax, batch_line, run_line, pop, label, pop_line))
    # Below the panels: inside, tiny batches put their dots and curves under any corner.
    fig.legend(panels[0][1:3] + (panels[0][5],), ["batch value", "running average",
                                                  "value over the whole training set"],
               loc="lower center", ncols=3, fontsize=8)
    title = fig.suptitle("")

    def update(momentum=DEFAULT_MOMENTUM, batch_size=32):
        n, bs = len(x), int(batch_size)
        rng = np.random.default_rng(0)
        idx = rng.integers(0, n, size=(DEMO_STEPS, bs))  # (K, B)  a fresh random batch each step
        xb = x[idx]  # (K, B)
        means, variances = xb.mean(axis=1), xb.var(axis=1)  # (K,), (K,)
        run_mean = ema_trajectory(means, momentum, init=0.0)  # (K + 1,)
        run_var = ema_trajectory(variances, momentum, init=1.0)  # (K + 1,)
        for (ax, batch_line, run_line, pop, label, _), batch_vals, run in zip(
                panels, (means, variances), (run_mean, run_var), strict=True):
            batch_line.set_data(steps[1:], batch_vals)
            run_line.set_data(steps, run)
            # Error once warmed up: RMS distance from the population value over the last 100
            # steps, relative to that value.
            err = np.sqrt(np.mean((run[-100:] - pop) ** 2)) / pop
            ax.set_title(f"running {label}: late relative RMS error {err:.1%}", fontsize=10)
        n_forget = steps_to_forget(momentum) if momentum > 0 else 1
        title.set_text(f"momentum {momentum:.3f}, batch {bs}: initial value weighs < 1% after "
                       f"{n_forget} steps")

    update(momentum, batch_size)
    # What a redraw changes, in drawing order (the population line and legend stay on top).
    update.artists = [a for ax, batch_line, run_line, _, _, pop_line in panels
                      for a in (batch_line, run_line, pop_line, ax.title)] + [title]
    return update


def plot_warmup(ax, result):
    """RMS of test-mode outputs after each training step, for both starting running_var."""
    for v0, rms in result["rms"].items():
        ax.semilogy(rms, "o-" if v0 else "s--", ms=3, color="C2" if v0 else "C3",
                    label=f"running_var starts at {v0:g}")
    ax.set(xlabel="training steps taken", ylabel="RMS of test-mode outputs",
           title="test mode before the running variance has warmed up")
    ax.legend()


RUNNING_STATS_DEMO = Demo(
    "running_stats",
    _draw_running_stats,
    {"momentum": Slider(0.5, 0.99, 0.01, DEFAULT_MOMENTUM, "momentum (weight of old)"),
     "batch_size": IntSlider(2, 128, 2, 32, "batch size")},
    question="Move momentum from 0.5 to 0.99. What do you gain and what do you pay? "
             "Then shrink the batch: which curve gets noisier, and why is the variance "
             "estimate below the dashed line for tiny batches?",
)
