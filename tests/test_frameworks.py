"""course.frameworks: the optional PyTorch import and TensorFlow's channels-last moments; and
that the framework cells of notebook 04 are guarded, so students without PyTorch skip them."""

import sys

import nbformat
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course import frameworks
from course.norms import spatial_batchnorm_forward
from course.notebook import SOLUTIONS


def _hide_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError


def test_without_torch_one_line_and_none(monkeypatch, capsys):
    _hide_torch(monkeypatch)
    monkeypatch.delenv(frameworks.REQUIRE, raising=False)
    assert frameworks.optional_torch() is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "skipped" in out


def test_without_torch_where_it_is_required_an_error(monkeypatch):
    _hide_torch(monkeypatch)
    monkeypatch.setenv(frameworks.REQUIRE, "1")
    with pytest.raises(ImportError, match="make test"):
        frameworks.optional_torch()


def test_make_test_really_has_torch():
    """`make test` installs PyTorch and sets COURSE_REQUIRE_TORCH: then torch must import, so
    the notebook's framework cells run instead of skipping (nbval would fail them otherwise)."""
    import os
    if not os.environ.get(frameworks.REQUIRE):
        pytest.skip(f"{frameworks.REQUIRE} not set (only `make test` requires PyTorch)")
    torch = frameworks.optional_torch()
    assert torch is not None and torch.zeros(2, dtype=torch.float64).sum().item() == 0.0


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.integers(1, 4),
       st.integers(0, 10**6))
def test_nhwc_moments_are_the_per_channel_statistics_of_spatial_bn(n, h, w, c, seed):
    x = np.random.default_rng(seed).normal(size=(n, c, h, w))  # (N, C, H, W)
    if n * h * w < 2:
        return  # one value per channel has no variance to normalise by
    mean, var = frameworks.nhwc_moments(x.transpose(0, 2, 3, 1))  # (C,), (C,)
    _, (cache, _) = spatial_batchnorm_forward(x, np.ones(c), np.zeros(c), {"mode": "train"})
    np.testing.assert_allclose(mean, cache["mu"], atol=1e-12)
    np.testing.assert_allclose(var, cache["var"], atol=1e-12)


def test_nhwc_moments_exact_values():
    x = np.arange(8.0).reshape(2, 2, 1, 2)  # (N, H, W, C): channel 0 holds 0, 2, 4, 6
    mean, var = frameworks.nhwc_moments(x)
    np.testing.assert_array_equal(mean, [3.0, 4.0])
    np.testing.assert_array_equal(var, [5.0, 5.0])


def test_every_torch_cell_of_the_notebooks_is_guarded():
    """A cell that uses torch either asks optional_torch() for it or runs under `if torch is not
    None`; and the framework cells are tagged, so the skip is visible in the notebook."""
    uses = 0
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code" or "torch." not in cell.source:
                continue
            uses += 1
            guarded = ("if torch is not None:" in cell.source
                       and "import torch" not in cell.source)
            assert guarded, f"{path.name}: a cell uses torch without the optional_torch guard"
    assert uses >= 4  # notebook 04's side-by-side cells
