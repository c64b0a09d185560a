"""The course's plotting style, applied in one place."""

from importlib import resources

import matplotlib.pyplot as plt


def use():
    """Apply course.mplstyle to every figure drawn after this call."""
    plt.style.use(str(resources.files("course").joinpath("course.mplstyle")))
