"""What the notebooks need to set the course beside the frameworks: PyTorch when it is installed,
and TensorFlow's channels-last moments written in numpy."""

import importlib
import os

# `make test` sets this: there PyTorch is installed on purpose, so a cell that would skip the
# framework comparison is a broken install, not a student without PyTorch.
REQUIRE = "COURSE_REQUIRE_TORCH"


def optional_torch():
    """The torch module, or None after saying in one line that the PyTorch cells are skipped."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        if os.environ.get(REQUIRE):
            raise ImportError(f"PyTorch is required here ({REQUIRE} is set), but it does not "
                              "import: run `make test`, which installs it") from None
        print("PyTorch is not installed: the PyTorch comparisons are skipped (nothing else needs "
              "it).")
        return None


def nhwc_moments(x):
    """Per-channel mean and biased variance of channels-last maps (N, H, W, C), as TensorFlow's
    tf.nn.moments(x, axes=[0, 1, 2]) computes them for its batch norm."""
    return x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))  # (C,), (C,)
