"""Interactive demo: how noisy batch statistics are at each batch size (notebook 06)."""

from functools import cache

import numpy as np

from course.figures.demo import Demo, Slider

_DEMO_SIZES = 2 ** np.arange(1, 9)  # batch sizes 2 .. 256 on the demo's right panel


@cache
def _std_noise_curve(n_batches=400):
    """Sampled sd of the batch std of N(0, 1) data for each demo batch size (computed once)."""
    rng = np.random.default_rng(1)
    return [float(rng.normal(size=(n_batches, b)).std(axis=1).std()) for b in _DEMO_SIZES]


@cache
def _demo_batches(B, n_batches=1000):
    """Batch means and stds of n_batches batches of B standard normal values (cached per B)."""
    batches = np.random.default_rng(0).normal(size=(n_batches, B))  # (n_batches, B)
    return batches.mean(axis=1), batches.std(axis=1)  # (n_batches,), (n_batches,)


def _draw_batch_noise(fig, log2_batch=3.0):
    """Batch mean and std of N(0, 1) data over many batches of one size, and how they shrink."""
    B = int(round(2**log2_batch))
    means, stds = _demo_batches(B)
    ax1, ax2 = fig.subplots(1, 2)
    # stepfilled: one polygon per histogram instead of 40 bars, so redraws stay fast
    ax1.hist(means, bins=40, range=(-2, 2), histtype="stepfilled", alpha=0.6, label="batch mean")
    ax1.hist(stds, bins=40, range=(0, 2.5), histtype="stepfilled", alpha=0.6, label="batch std")
    ax1.axvline(0, color="k", lw=1)
    ax1.axvline(1, color="k", lw=1, ls="--")
    ax1.set_xlim(-2, 2.5)
    ax1.set_title(f"B = {B}: {len(means)} batches of N(0, 1)")
    ax1.legend(loc="upper left")
    ax2.loglog(_DEMO_SIZES, 1 / np.sqrt(_DEMO_SIZES), "o-", label="sd of mean = 1/√B")
    ax2.loglog(_DEMO_SIZES, _std_noise_curve(), "s-", label="sd of std (sampled)")
    ax2.axvline(B, color="k", lw=1)
    # Fixed major ticks and no minor ones: log-axis minor ticks would dominate the redraw time.
    ax2.minorticks_off()
    ax2.set_xticks(_DEMO_SIZES, [str(b) for b in _DEMO_SIZES])
    ax2.set_yticks([0.05, 0.1, 0.2, 0.5], ["0.05", "0.1", "0.2", "0.5"])
    ax2.set_xlabel("batch size B")
    ax2.set_title("noise of the batch statistics")
    ax2.legend(loc="lower left")


BATCH_NOISE_DEMO = Demo(
    name="batch_noise",
    draw=_draw_batch_noise,
    sliders={"log2_batch": Slider(1, 8, 1, 3, "log2(batch size)")},
    question="During training each example is divided by its batch's std, at test time by a "
             "fixed running value: below which batch size is the batch std often off by more "
             "than 30%?",
)
