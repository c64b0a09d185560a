"""γ and β on top of a sigmoid: how scale and shift move standardised features across it."""

import numpy as np

from course.demo import Demo, Slider
from course.layers import sigmoid, sigmoid_grad
from course.saturation import SATURATION_THRESHOLD, saturation_fraction


def standardized_sample(n=4000, seed=0):
    """A fixed bimodal feature, standardised: two groups that sat on either side of a sigmoid."""
    rng = np.random.default_rng(seed)
    z = np.concatenate([rng.normal(-3.0, 1.0, n // 2), rng.normal(3.0, 1.0, n - n // 2)])  # (n,)
    return (z - z.mean()) / z.std()  # (n,)


def saturation(z):
    """(fraction of saturated units, mean slope sigma'(z)) for pre-activations z."""
    # "Saturated" means the same as in notebook 01: |z| beyond SATURATION_THRESHOLD.
    z = np.asarray(z, dtype=float)
    return saturation_fraction(z), float(np.mean(sigmoid_grad(z)))


_X_HAT = standardized_sample()  # (n,)  drawn once: redraws only rescale it
_Z_BINS = np.linspace(-8.0, 8.0, 65)
_S_BINS = np.linspace(0.0, 1.0, 41)


def draw_gamma_beta(fig, gamma=1.0, beta=0.0):
    """Histogram of y = gamma * x_hat + beta over the sigmoid, and of sigmoid(y)."""
    y = gamma * _X_HAT + beta  # (n,)
    frac, slope = saturation(y)
    # Fixed margins instead of the style's tight layout: the layout pass would double redraw time.
    fig.set_layout_engine("none")
    ax_y, ax_s = fig.subplots(1, 2, gridspec_kw={"left": 0.07, "right": 0.98, "bottom": 0.14,
                                                 "top": 0.9, "wspace": 0.25})
    counts, _ = np.histogram(np.clip(y, -8.0, 8.0), _Z_BINS)
    ax_y.stairs(counts / counts.max(), _Z_BINS, fill=True, alpha=0.5,
                label=r"$y=\gamma\hat{x}+\beta$")
    grid = np.linspace(-8.0, 8.0, 200)
    ax_y.plot(grid, sigmoid(grid), color="k", lw=1.2, label=r"$\sigma(y)$")
    ax_y.plot(grid, 4 * sigmoid_grad(grid), color="C1", lw=1.2, ls="--",
              label=r"$4\,\sigma'(y)$")
    for side in (-1, 1):
        ax_y.axvspan(side * SATURATION_THRESHOLD, side * 8.0, color="0.85", zorder=0)
    ax_y.set(xlim=(-8, 8), ylim=(0, 1.3), xticks=np.arange(-8, 9, 2), yticks=[0, 0.5, 1],
             xlabel=f"BN output y (grey: saturated, |y| > {SATURATION_THRESHOLD:g})",
             title=rf"$\gamma$ = {gamma:.2f}, $\beta$ = {beta:.2f}")
    ax_y.legend(loc="upper center", ncols=3, handlelength=1.2)
    counts, _ = np.histogram(sigmoid(y), _S_BINS)
    ax_s.stairs(counts / len(y), _S_BINS, fill=True, color="C2", alpha=0.7)
    ax_s.set(xlim=(0, 1), xticks=[0, 0.25, 0.5, 0.75, 1], xlabel=r"sigmoid output $\sigma(y)$",
             ylabel="fraction of units",
             title=f"saturated: {frac:.0%}   mean σ′: {slope:.3f}")


GAMMA_BETA_DEMO = Demo(
    name="gamma_beta_sigmoid",
    draw=draw_gamma_beta,
    sliders={"gamma": Slider(0.0, 5.0, 0.05, 1.0, "γ (scale)"),
             "beta": Slider(-5.0, 5.0, 0.1, 0.0, "β (shift)")},
    question="Which γ and β put the two groups back into the sigmoid's curved region, "
             "so they are told apart, without saturating them?",
)
