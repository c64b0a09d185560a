"""Every interactive demo: its drawing function works without a browser and reacts to sliders."""

import importlib
import io
import pkgutil

import matplotlib.pyplot as plt
import numpy as np
import pytest

import course
from course.demo import REGISTRY

for _info in pkgutil.iter_modules(course.__path__):  # defining a Demo registers it
    if not _info.ispkg and _info.name not in {"release"}:
        importlib.import_module(f"course.{_info.name}")
DEMOS = list(REGISTRY)


def _pixels(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="rgba")
    plt.close(fig)
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


def test_demos_exist():
    assert DEMOS, "no Demo is registered in course/"
    assert len({d.name for d in DEMOS}) == len(DEMOS)


@pytest.mark.parametrize("demo", DEMOS, ids=lambda d: d.name)
def test_demo_draws_at_every_slider_extreme_and_each_slider_changes_the_picture(demo):
    assert "?" in demo.question, "a demo asks its guiding question"
    base = _pixels(demo.figure())
    assert demo.figure().axes if plt.close("all") is None else True
    for name, s in demo.sliders.items():
        assert s.min <= s.value <= s.max and s.step > 0
        other = s.max if s.value != s.max else s.min
        moved = _pixels(demo.figure(**{name: other}))
        assert moved.shape != base.shape or np.any(moved != base), f"slider {name} changes nothing"
