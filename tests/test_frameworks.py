"""course.frameworks: the optional PyTorch import and TensorFlow's channels-last moments; and
that the framework cells of notebook 04 are guarded, so students without PyTorch skip them."""

import re
import sys

import nbformat
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course import frameworks
from course.claims import assert_all_hold
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
    None`, and never imports it itself, so students without PyTorch skip those cells."""
    uses = 0
    for path in sorted(SOLUTIONS.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code" or not re.search(r"\btorch\b", cell.source):
                continue
            uses += 1
            assert "import torch" not in cell.source, path.name
            if "optional_torch()" in cell.source or "frameworks.feature_maps(torch" in cell.source:
                continue  # asks for it, or passes None on to a function that checks
            assert "if torch is not None:" in cell.source, f"{path.name}: unguarded torch cell"
    assert uses >= 4  # notebook 04's side-by-side cells


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")  # `make test` installs it; a student's setup may not


def _xs(seed=0, k=20, N=8, D=4):
    rng = np.random.default_rng(seed)
    return [rng.normal(2.0, 3.0, size=(N, D)) for _ in range(k)]  # (N, D) each


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), N=st.integers(2, 9), m=st.floats(0.5, 0.99))
def test_pytorch_buffers_are_the_numpy_rule_and_n_over_n_minus_1_of_the_courses(torch, seed, N,
                                                                                    m):
    from course import running_stats as rs

    r = frameworks.running_buffers(torch, _xs(seed, k=7, N=N), rs.pytorch_running_update, m)
    assert_all_hold(frameworks.claims(r))


def test_a_wrong_update_is_caught_by_the_buffer_claims(torch):
    from course import running_stats as rs

    def weight_of_old(rm, rv, x, momentum):  # the course's convention passed to PyTorch's rule
        return rs.pytorch_running_update(rm, rv, x, 1 - momentum)

    r = frameworks.running_buffers(torch, _xs(), weight_of_old)
    held = {c.sentence: c.holds for c in frameworks.claims(r)}
    assert not held["PyTorch's running_mean and running_var equal the numpy update passed in"]


def test_eval_autograd_settings_and_feature_maps_agree_with_the_course(torch):
    from course import running_stats as rs
    from course.batchnorm import batchnorm_forward

    xs = _xs(1)
    r = frameworks.running_buffers(torch, xs, rs.pytorch_running_update)
    assert_all_hold(frameworks.claims(frameworks.eval_and_autograd(
        torch, r, batchnorm_forward, x_new=xs[1][:5], x=xs[0])))
    assert_all_hold(frameworks.claims(frameworks.settings_without_a_switch(torch, xs)))
    maps = np.random.default_rng(2).normal(size=(4, 3, 5, 5))  # (N, C, H, W)
    full = frameworks.feature_maps(torch, maps)
    assert "bn2d_error" in full
    assert_all_hold(frameworks.claims(full))
    without = frameworks.claims(frameworks.feature_maps(None, maps))
    assert len(without) == 1 and without[0].holds  # TensorFlow's moments need no PyTorch
