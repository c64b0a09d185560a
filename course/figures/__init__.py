"""Drawing what the math modules compute: one figures/<topic>.py per course/<topic>.py, the
Demo wrapper (figures/demo.py) and the course's plotting style."""

from importlib import resources

import matplotlib.pyplot as plt


def use_style():
    """Apply course.mplstyle to every figure drawn after this call."""
    plt.style.use(str(resources.files("course.figures").joinpath("course.mplstyle")))


def all_demos():
    """Every interactive demo of the course, in notebook order."""
    from course.figures import (
        batchnorm,
        norms,
        running_stats,
        saturation,
        scale_invariance,
        sync_bn,
    )

    return [saturation.SATURATION_DEMO, saturation.GAMMA_BETA_DEMO, batchnorm.BACKWARD_DEMO,
            running_stats.RUNNING_STATS_DEMO, norms.NORM_AXES_DEMO, sync_bn.BATCH_NOISE_DEMO,
            scale_invariance.WEIGHT_DECAY_DEMO]
