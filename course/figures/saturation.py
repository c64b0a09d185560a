"""Sigmoid saturation pictures: pre-activation histograms over the sigmoid and the saturation
demo (notebook 01), and the gamma/beta demo on top of a sigmoid (notebook 02)."""

from functools import cache

import numpy as np

from course.figures.demo import Demo, Slider
from course.layers import sigmoid, sigmoid_grad
from course.saturation import (
    SATURATION_THRESHOLD,
    demo_data,
    linear_r2,
    mlp_forward_backward,
    saturation,
    saturation_fraction,
    standardized_sample,
)

Z_RANGE = 12.0  # histograms cover [-12, 12]; anything further out is piled into the edge bins
EDGES = np.linspace(-Z_RANGE, Z_RANGE, 61)  # (61,)
_CURVE_Z = np.linspace(-Z_RANGE, Z_RANGE, 121)  # (121,)
_CURVE_S = sigmoid(_CURVE_Z)  # (121,)
_LOG_TICKS = 10.0 ** np.arange(-8, 1, 2)  # (5,) 1e-08 ... 1
PANEL = 2 * Z_RANGE + 3  # horizontal distance between two layers' z = 0 in draw_layers


def z_histogram(z):
    """Histogram of all entries of z on EDGES, scaled so the tallest bar is 1 (clipped at ±12)."""
    counts, _ = np.histogram(np.clip(z, -Z_RANGE, Z_RANGE), bins=EDGES)  # (60,)
    return counts / max(counts.max(), 1)


def draw_layers(ax, zs, threshold=SATURATION_THRESHOLD, color="C0", label="", explain=None):
    """Every layer's pre-activation histogram over its own copy of the sigmoid, side by side;
    returns update(zs), which redraws the histograms and labels for new pre-activations.

    One axes holds all layers (each shifted right by PANEL) because a single axes redraws
    several times faster than one per layer; the grey bands are the saturated tails. Values
    beyond ±Z_RANGE land in the outermost bars, which a red triangle then marks.
    """
    centres = np.arange(len(zs)) * PANEL  # (L,) each layer's z = 0
    width = Z_RANGE - threshold
    tails = [(c + side, width) for c in centres for side in (-Z_RANGE, threshold)]
    ax.broken_barh(tails, (0, 1.2), color="0.9", lw=0)  # one artist for all the grey bands
    gap = np.full(1, np.nan)
    curves_x = np.concatenate([np.concatenate([c + _CURVE_Z, gap]) for c in centres])
    curves_y = np.concatenate([np.concatenate([_CURVE_S, gap]) for _ in centres])
    (curves,) = ax.plot(curves_x, curves_y, color="0.3", lw=1.2)  # every layer's sigmoid
    bars = [ax.stairs(np.zeros(len(EDGES) - 1), c + EDGES, fill=True, color=color, alpha=0.6)
            for c in centres]
    labels = [ax.text(c, 1.22, "", ha="center", va="bottom", fontsize=8.5) for c in centres]
    (spikes,) = ax.plot([], [], "v", color="k", ms=5, clip_on=False)
    ticks = (centres[:, None] + [-8.0, 0.0, 8.0]).ravel()  # (3L,) z = -8, 0, 8 of each layer
    ax.set_xticks(ticks, ["−8", "0", "8"] * len(zs))
    ax.set(xlim=(-Z_RANGE, centres[-1] + Z_RANGE), ylim=(0, 1.2), yticks=[])
    ax.spines["left"].set_visible(False)
    spec = ax.get_subplotspec()
    if explain or explain is None and (spec is None or spec.is_last_row()):
        # One explanation under a column of such axes (explain=None: under the bottom one).
        ax.set_xlabel(f"pre-activation z of each layer (grey: saturated, |z| > {threshold:g}; "
                      f"▼: values beyond ±{Z_RANGE:g}, counted in the outermost bar)",
                      fontsize=9)
    ax.grid(False)
    ax.set_ylabel(label)

    def update(zs):
        sx, sy = [], []
        for l, (c, bar, text, z) in enumerate(zip(centres, bars, labels, zs, strict=True), 1):
            h = z_histogram(z)  # (60,)
            bar.set_data(h)
            text.set_text(f"layer {l}: {saturation_fraction(z, threshold):.1%} sat.")
            for side, edge in ((-1, 0), (1, -1)):
                if np.any(side * np.asarray(z) > Z_RANGE):
                    sx.append(c + side * (Z_RANGE - 0.2))
                    sy.append(min(h[edge] + 0.06, 1.15))
        spikes.set_data(sx, sy)

    update(zs)
    update.artists = [*bars, curves, *labels, spikes]  # the curves lie over the bars
    return update


def draw_scale_rows(fig, results, color="C0", label="c = {scale:g}"):
    """One draw_layers row per weight scale ({scale: mlp_forward_backward result}), with fixed
    margins so the per-layer labels never run into the row above."""
    fig.set_size_inches(10, 2.1 * len(results) + 0.5)
    fig.set_layout_engine("none")  # the style's automatic layout cannot place draw_layers' texts
    axes = fig.subplots(len(results), 1, gridspec_kw={"left": 0.07, "right": 0.99, "top": 0.93,
                                                      "bottom": 0.1, "hspace": 0.55})
    for ax, (scale, r) in zip(np.atleast_1d(axes), results.items(), strict=True):
        draw_layers(ax, r["z"], color=color, label=label.format(scale=scale))
    fig.supylabel("histogram of z per layer (tallest bar = 1)", fontsize=9, x=0.005)
    return axes


def draw_unit_strips(fig, zs, threshold=SATURATION_THRESHOLD, title=""):
    """Each unit of each layer as its batch mean (dot) with a bar of ± one std over the batch,
    units sorted by their mean: the spread within a unit and the offsets between units apart."""
    axes = fig.subplots(1, len(zs), sharey=True)
    fig.set_size_inches(10, 3.2)
    top = max(12.0, max(np.abs(z.mean(axis=0)).max() + z.std(axis=0).max() for z in zs))
    for l, (ax, z) in enumerate(zip(axes, zs, strict=True), 1):
        mean, std = z.mean(axis=0), z.std(axis=0)  # (H,), (H,)
        order = np.argsort(mean)
        units = np.arange(len(mean))
        for side in (-1, 1):
            ax.axhspan(side * threshold, side * top, color="0.9", lw=0)
        ax.vlines(units, (mean - std)[order], (mean + std)[order], color="C0", lw=1)
        ax.plot(units, mean[order], "o", ms=2.5, color="k")
        ax.set(title=f"layer {l}", xticks=[], ylim=(-top, top), xlabel="units, by mean")
        ax.grid(False)
    axes[0].set_ylabel("z: unit mean ± std")
    if title:
        fig.suptitle(title, fontsize=10)
    return axes


def draw_drift(fig, study, units=5):
    """The first few units' inputs over the SGD steps of drift_study, mean ± std over the fixed
    batch, plain and standardised side by side."""
    axes = fig.subplots(1, 2, sharey=True)
    for ax, name in zip(axes, ("plain", "standardised"), strict=True):
        rec = study[name]["record"]  # (steps + 1, batch, units)
        steps = np.arange(len(rec))
        # Units by grey level and line style: the notebook's colours stand for its variants.
        for u, ls in zip(range(units), ("-", "--", ":", "-.", (0, (5, 1, 1, 1))), strict=False):
            m, sd = rec[:, :, u].mean(axis=1), rec[:, :, u].std(axis=1)  # (steps + 1,) each
            grey = str(round(0.6 * u / max(units - 1, 1), 2))
            ax.plot(steps, m, color=grey, ls=ls, label=f"unit {u + 1}")
            ax.fill_between(steps, m - sd, m + sd, color=grey, alpha=0.12, lw=0)
        ax.set(title=f"{name}: layer-4 inputs to the sigmoid", xlabel="SGD step")
    axes[0].set_ylabel("unit's mean ± std over the fixed batch")
    axes[0].legend(title="line: mean; band: ± std", fontsize=8, title_fontsize=8, ncols=2,
                   loc="lower right", bbox_to_anchor=(1.0, 0.14))
    return axes


def draw_saturation(fig, scale=1.0, shift=0.0):
    """Demo: per-layer histograms; saturated fraction plain, centred only and standardised;
    relative gradient plain vs standardised.
    Returns update(scale, shift) for the same figure."""
    X, y, weights = demo_data()
    depth = len(weights) - 1
    fig.set_size_inches(10, 5.4)
    # Fixed margins instead of the style's automatic layout, which lays out all text twice.
    fig.set_layout_engine("none")
    grid = fig.add_gridspec(2, 2, height_ratios=(1, 1.25), left=0.06, right=0.985, bottom=0.09,
                            top=0.9, hspace=0.42, wspace=0.22)
    ax_top = fig.add_subplot(grid[0, :])

    layers = np.arange(1, depth + 1)
    ax = fig.add_subplot(grid[1, 0])
    # Bars above the grid (zorder 1.5) in every drawing, so a blitted redraw equals a full one.
    # One colour per variant in both panels; the hatch tells "centred only" apart without colour.
    sat_bars = [ax.bar(layers + dx, np.zeros(depth), 0.27, label=name, zorder=1.6, hatch=hatch,
                       color=color)
                for dx, name, hatch, color in ((-0.27, "plain", "", "C0"),
                                               (0.0, "centred only", "//", "C2"),
                                               (0.27, "standardised", "", "C1"))]
    ax.set(ylim=(0, 1), xlabel="hidden layer", ylabel=f"fraction |z| > {SATURATION_THRESHOLD:g}")
    ax.legend(loc="upper left")

    ax = fig.add_subplot(grid[1, 1])
    steps = np.arange(1, depth + 2)  # hidden layers, then the output layer
    grad_lines = [ax.semilogy(steps, np.ones(depth + 1), "o-", label="plain")[0],
                  ax.semilogy(steps, np.ones(depth + 1), "s-", label="standardised")[0]]
    ax.set(xlabel="layer (last = output)", ylabel="‖dL/dW‖ / ‖W‖", ylim=(1e-9, 1e1))
    # Plain-text labels: the default log labels are mathtext, slow to typeset on every redraw.
    ax.set_yticks(_LOG_TICKS, [f"{t:g}" for t in _LOG_TICKS])
    ax.minorticks_off()
    ax.legend(loc="lower right")
    title = fig.suptitle("", fontsize=10)
    layers_update = []

    def update(scale=1.0, shift=0.0):
        plain = mlp_forward_backward(X, y, weights, scale, shift)
        centred = mlp_forward_backward(X, y, weights, scale, shift, normalize="center")
        normed = mlp_forward_backward(X, y, weights, scale, shift, normalize=True)
        if layers_update:
            layers_update[0](plain["z"])
        else:
            layers_update.append(draw_layers(ax_top, plain["z"], label="plain net",
                                                     explain=True))
        for bars, r in zip(sat_bars, (plain, centred, normed), strict=True):
            for bar, z in zip(bars, r["z"], strict=True):
                bar.set_height(saturation_fraction(z))
        for line, r in zip(grad_lines, (plain, normed), strict=True):
            line.set_ydata(r["rel_grad_norms"])
        title.set_text(f"weight scale {scale:g}, shift {shift:+g}: loss {plain['loss']:.2f}")

    update(scale, shift)
    # What a redraw changes, in drawing order (the legends stay on top of the bars and lines).
    update.artists = [*layers_update[0].artists, *sat_bars[0], *sat_bars[1], *sat_bars[2],
                      sat_bars[0][0].axes.get_legend(), *grad_lines,
                      grad_lines[0].axes.get_legend(), title]
    return update


SATURATION_DEMO = Demo(
    "sigmoid_saturation", draw_saturation,
    sliders={"scale": Slider(0.25, 10.0, 0.25, 1.0, "weight scale"),
             "shift": Slider(-4.0, 4.0, 0.5, 0.0, "input shift (every bias)")},
    question="Move the weight scale from 0.25 to 10: where is the plain net's layer-1 gradient "
             "smallest relative to its weights, with small weights (nothing saturated) or large "
             "ones, and which panel shows why? How much of the saturation does centring alone "
             "remove? Does shifting every sigmoid's input change anything for the standardised "
             "net?")


# ----------------------------------------------------------------------------------------------
# Notebook 02: gamma and beta move standardised features across the sigmoid


@cache
def _x_hat():
    """The demo's standardised sample, drawn once: redraws only rescale it."""
    return standardized_sample()  # (n,)


@cache
def _x_hat_dots():
    """Every 10th value of the sample, sorted: enough dots to show the curve, cheap to redraw."""
    return np.sort(_x_hat())[::10]  # (n / 10,)


_Z_BINS = np.linspace(-8.0, 8.0, 65)


def draw_gamma_beta(fig, gamma=1.0, beta=0.0):
    """Histogram of y = gamma * x_hat + beta over the sigmoid, and sigmoid(y) against y with the
    best straight line: how far from linear the unit acts on these values. Returns
    update(gamma, beta) for the same figure."""
    # Fixed margins instead of the style's tight layout: the layout pass would double redraw time.
    fig.set_layout_engine("none")
    fig.set_size_inches(10, 3.6)
    ax_y, ax_s = fig.subplots(1, 2, gridspec_kw={"left": 0.07, "right": 0.98, "bottom": 0.14,
                                                 "top": 0.9, "wspace": 0.25})
    # Above the grid (zorder 1.5) in every drawing, so a blitted redraw equals a full one.
    hist = ax_y.stairs(np.zeros(len(_Z_BINS) - 1), _Z_BINS, fill=True, alpha=0.5, zorder=1.6,
                       label=r"$y=\gamma\hat{x}+\beta$")
    grid = np.linspace(-8.0, 8.0, 200)
    ax_y.plot(grid, sigmoid(grid), color="k", lw=1.2, label=r"$\mathrm{sig}(y)$")
    ax_y.plot(grid, 4 * sigmoid_grad(grid), color="C1", lw=1.2, ls="--",
              label=r"$4\,\mathrm{sig}'(y)$")
    for side in (-1, 1):
        ax_y.axvspan(side * SATURATION_THRESHOLD, side * 8.0, color="0.85", zorder=0)
    ax_y.set(xlim=(-8, 8), ylim=(0, 1.3), xticks=np.arange(-8, 9, 2), yticks=[0, 0.5, 1],
             xlabel=f"BN output y (grey: saturated, |y| > {SATURATION_THRESHOLD:g})",
             ylabel="share of the values (tallest bar = 1)")
    ax_y.legend(loc="upper center", ncols=3, handlelength=1.2)
    (dots_line,) = ax_s.plot([], [], ".", ms=3, color="C2", label="sig(y) of the values")
    (fit_line,) = ax_s.plot([], [], color="0.3", lw=1, label="best straight line")
    ax_s.set(xlim=(-8, 8), ylim=(-0.05, 1.05), xticks=np.arange(-8, 9, 2), xlabel="BN output y",
             ylabel=r"sigmoid output $\mathrm{sig}(y)$")
    ax_s.legend(loc="upper left")

    def update(gamma=1.0, beta=0.0):
        y = gamma * _x_hat() + beta  # (n,)
        frac, slope = saturation(y)
        r2 = linear_r2(y[:, None], sigmoid(y)[:, None])[0] if gamma != 0 else 1.0
        counts, _ = np.histogram(np.clip(y, -8.0, 8.0), _Z_BINS)  # (64,)
        hist.set_data(counts / counts.max())
        # Plain text, not mathtext: a changing mathtext title is re-typeset on every redraw.
        ax_y.set_title(f"γ = {gamma:.2f}, β = {beta:.2f}: {frac:.0%} saturated, "
                       f"mean sig′ {slope:.3f}")
        dots = gamma * _x_hat_dots() + beta  # (n / 10,) sorted
        s = sigmoid(dots)
        fit = np.polyfit(dots, s, 1) if gamma != 0 else (0.0, float(s.mean()))
        dots_line.set_data(dots, s)
        fit_line.set_data(dots[[0, -1]], np.polyval(fit, dots[[0, -1]]))
        ax_s.set_title(f"how linear: a straight line leaves {1 - r2:.1%} unexplained")

    update(gamma, beta)
    # What a redraw changes, in drawing order (curves and legends stay on top of the histogram).
    update.artists = [hist, *ax_y.lines, ax_y.get_legend(), ax_y.title, dots_line, fit_line,
                      ax_s.get_legend(), ax_s.title]
    return update


GAMMA_BETA_DEMO = Demo(
    name="gamma_beta_sigmoid",
    draw=draw_gamma_beta,
    sliders={"gamma": Slider(0.0, 5.0, 0.05, 1.0, "γ (scale)"),
             "beta": Slider(-5.0, 5.0, 0.1, 0.0, "β (shift)")},
    question="At γ = 1 does the sigmoid do anything a straight line could not? Raise γ: when do "
             "the dots bend into an S, and how many values saturate by then? Then move β: "
             "which group reaches the flat tail first?",
)
