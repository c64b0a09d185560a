"""Loss spread and gradient change along the gradient, with and without BN (notebook 07)."""

import matplotlib.pyplot as plt
import numpy as np


def plot_landscape(results):
    """Mean and [min, max] over seeds, per checkpoint: loss spread, gradient change at eta = lr,
    effective beta; results from course.smoothness.compare."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for bn, runs in results.items():
        label = "with BN" if bn else "without BN"
        k = len(runs[0]["etas"]) // 2  # the middle step size (eta = lr by default)
        for ax, values in zip(axes, (np.array([r["loss_spread"] for r in runs]),
                                     np.array([r["grad_change"][:, k] for r in runs]),
                                     np.array([r["beta"] for r in runs])), strict=True):
            x = np.arange(values.shape[1])
            ax.plot(x, values.mean(axis=0), marker="o", label=label)
            ax.fill_between(x, values.min(axis=0), values.max(axis=0), alpha=0.25)
    for ax, title in zip(axes, ("loss range max-min of L(w - η g)", "gradient change at η = lr",
                                "effective β-smoothness"), strict=True):
        ax.set(xlabel="epoch (0 = initialisation)", title=title, yscale="log")
    axes[0].legend()
    return fig
