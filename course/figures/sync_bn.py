"""Interactive demo: how noisy batch statistics are at each batch size (notebook 06)."""

from functools import cache

import numpy as np

from course.figures.demo import Demo, IntSlider

_DEMO_SIZES = 2 ** np.arange(1, 9)  # batch sizes 2 .. 256 on the demo's right panel


@cache
def _noise_curves(n_batches=400):
    """Sampled sd of the batch mean and of the batch std of N(0, 1) data for each demo batch size
    (computed once): (mean curve, std curve)."""
    rng = np.random.default_rng(1)
    batches = [rng.normal(size=(n_batches, b)) for b in _DEMO_SIZES]  # (n_batches, B) each
    return ([float(x.mean(axis=1).std()) for x in batches],
            [float(x.std(axis=1).std()) for x in batches])


@cache
def _demo_batches(B, n_batches=1000):
    """Batch means and stds of n_batches batches of B standard normal values (cached per B)."""
    batches = np.random.default_rng(0).normal(size=(n_batches, B))  # (n_batches, B)
    return batches.mean(axis=1), batches.std(axis=1)  # (n_batches,), (n_batches,)


OFF = 0.3  # the question's "more than 30 % off": batch std outside [0.7, 1.3] of the true 1
_MEAN_BINS = np.linspace(-2.0, 2.0, 41)  # (41,)
_STD_BINS = np.linspace(0.0, 2.5, 41)  # (41,)


def _draw_batch_noise(fig, log2_batch=3):
    """Batch mean and std of N(0, 1) data over many batches of one size, how often the std is
    more than 30 % off, and how the noise shrinks with B. Returns update(log2_batch)."""
    fig.set_layout_engine("none")  # fixed margins: no layout pass on every redraw
    fig.set_size_inches(10, 3.8)
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"left": 0.06, "right": 0.98, "bottom": 0.14,
                                               "top": 0.88, "wspace": 0.24})
    ax1.axvspan(1 - OFF, 1 + OFF, color="C2", alpha=0.12, lw=0,
                label=f"std within ±{OFF:.0%} of 1")
    # Stairs, not hist: a redraw then only swaps the counts of one polygon per histogram; above
    # the grid (zorder 1.5) in every drawing, so a blitted redraw equals a full one.
    h_mean = ax1.stairs(np.zeros(40), _MEAN_BINS, fill=True, alpha=0.6, label="batch mean",
                        zorder=1.6)
    h_std = ax1.stairs(np.zeros(40), _STD_BINS, fill=True, alpha=0.6, label="batch std",
                       zorder=1.6)
    ax1.axvline(0, color="k", lw=1)
    ax1.axvline(1, color="k", lw=1, ls="--")
    # A fixed y axis (share of the batches per bin): readable values, comparable across B, and a
    # redraw never has to change its ticks.
    ax1.set(xlim=(-2, 2.5), ylim=(0, 0.5), xlabel="value over the batch",
            ylabel="share of the batches per bin")
    ax1.set_yticks([0, 0.1, 0.2, 0.3, 0.4, 0.5], ["0", "10%", "20%", "30%", "40%", "50%"])
    ax1.legend(loc="upper left", fontsize=8)
    sd_mean, sd_std = _noise_curves()
    ax2.loglog(_DEMO_SIZES, sd_mean, "o-", label="sd of mean (sampled)")
    ax2.loglog(_DEMO_SIZES, sd_std, "s-", label="sd of std (sampled)")
    ax2.loglog(_DEMO_SIZES, 1 / np.sqrt(_DEMO_SIZES), ":", color="k", label="1/√B (theory, mean)")
    marker = ax2.axvline(1, color="k", lw=1)
    # Fixed major ticks and no minor ones: log-axis minor ticks would dominate the redraw time.
    ax2.minorticks_off()
    ax2.set_xticks(_DEMO_SIZES, [str(b) for b in _DEMO_SIZES])
    ax2.set_yticks([0.05, 0.1, 0.2, 0.5], ["0.05", "0.1", "0.2", "0.5"])
    ax2.set(xlabel="batch size B", xlim=(1.6, 320), ylabel="sd over batches (data sd = 1)")
    ax2.set_title("noise of the batch statistics")
    ax2.legend(loc="lower left")

    def update(log2_batch=3):
        B = int(round(2**log2_batch))
        means, stds = _demo_batches(B)
        for hist, values, bins in ((h_mean, means, _MEAN_BINS), (h_std, stds, _STD_BINS)):
            counts, _ = np.histogram(values, bins)  # (40,)
            hist.set_data(counts / len(values))  # share of the batches, at most 0.45 for B = 256
        off = np.mean(np.abs(stds - 1) > OFF)
        ax1.set_title(f"B = {B}, {len(means)} batches of N(0, 1): batch std more than "
                      f"{OFF:.0%} off in {off:.0%}", fontsize=10)
        marker.set_xdata([B, B])

    update(log2_batch)
    # What a redraw changes, in drawing order (the lines and legend stay on top of the bars);
    # the y axis is fixed, so the saved background stays valid.
    update.artists = [h_mean, h_std, *ax1.lines, ax1.get_legend(), ax1.title, marker]
    return update


BATCH_NOISE_DEMO = Demo(
    name="batch_noise",
    draw=_draw_batch_noise,
    sliders={"log2_batch": IntSlider(1, 8, 1, 3, "log2(batch size)")},
    question="During training each example is divided by its batch's std, at test time by a "
             "fixed running value: below which batch size is the batch std often off by more "
             "than 30% (outside the green band)?",
)
