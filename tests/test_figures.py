"""course.figures: every demo draws without a browser and reacts to its sliders; the graph and
backward walk (notebook 03), the saturation and γ/β pictures (01, 02) and the experiment plots."""

import io
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from course.batchnorm import batchnorm_forward, tiny_batch
from course.figures import all_demos, use_style
from course.figures import batchnorm as graph
from course.figures import experiments as ex_fig
from course.figures.demo import Choice, Demo, LiveFigure, active, png_bytes
from course.figures.norms import NORM_AXES_DEMO
from course.figures.running_stats import RUNNING_STATS_DEMO
from course.figures.saturation import (
    EDGES,
    GAMMA_BETA_DEMO,
    SATURATION_DEMO,
    draw_layers,
    draw_saturation,
    draw_scale_rows,
    draw_unit_strips,
    z_histogram,
)
from course.figures.sync_bn import BATCH_NOISE_DEMO, _demo_batches
from course.layers import sigmoid
from course.saturation import (
    demo_data,
    linear_r2,
    mlp_forward_backward,
    saturation,
    saturation_fraction,
    standardized_sample,
)

DEMOS = all_demos()


def _pixels(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="rgba")
    plt.close(fig)
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]


# ---------------------------------------------------------------- every demo

def test_all_demos_lists_every_demo_once():
    assert DEMOS and all(isinstance(d, Demo) for d in DEMOS)
    assert len({d.name for d in DEMOS}) == len(DEMOS)


@pytest.mark.parametrize("demo", DEMOS, ids=lambda d: d.name)
def test_demo_draws_at_every_slider_extreme_and_each_slider_changes_the_picture(demo):
    assert "?" in demo.question, "a demo asks its guiding question"
    fig = demo.figure()
    assert fig.axes
    base = _pixels(fig)
    for name, s in demo.sliders.items():
        if isinstance(s, Choice):
            assert s.value in s.options and len(s.options) > 1
            other = next(o for o in s.options if o != s.value)
        else:
            assert s.min <= s.value <= s.max and s.step > 0
            other = s.max if s.value != s.max else s.min
        moved = _pixels(demo.figure(**{name: other}))
        assert moved.shape != base.shape or np.any(moved != base), f"slider {name} changes nothing"


@pytest.mark.parametrize("demo", DEMOS, ids=lambda d: d.name)
def test_a_live_figure_updated_in_place_matches_a_fresh_drawing(demo):
    """What Demo.show does on a slider move (update the one figure, redraw only what changed)
    draws exactly what a fresh figure drawn in full at the new parameters draws."""
    live = LiveFigure(demo.draw)
    live.png(**demo.defaults())
    for name, s in demo.sliders.items():
        other = (next(o for o in s.options if o != s.value) if isinstance(s, Choice)
                 else s.max if s.value != s.max else s.min)
        params = {**demo.defaults(), name: other}
        fresh = Figure()
        demo.draw(fresh, **params)
        assert live.png(**params) == png_bytes(fresh), f"updating {name} differs"


def test_only_when_disables_a_control_that_does_nothing():
    groups = NORM_AXES_DEMO.sliders["groups"]
    assert isinstance(NORM_AXES_DEMO.sliders["kind"], Choice)
    assert active(groups, {"kind": "group", "groups": 2})
    assert not any(active(groups, {"kind": k, "groups": 2}) for k in ("batch", "layer",
                                                                      "instance"))


def test_norm_axes_demo_has_a_colour_bar_per_heat_map():
    fig = NORM_AXES_DEMO.figure(kind="batch")
    assert len(fig.axes) == 5  # block, two heat maps, their two colour bars
    assert fig.axes[0].get_title() == "Batch norm"
    plt.close(fig)


@pytest.mark.parametrize("log2_batch", [1, 3, 8])
def test_batch_noise_demo_prints_the_fraction_more_than_30_percent_off(log2_batch):
    _, stds = _demo_batches(2**log2_batch)
    fig = BATCH_NOISE_DEMO.figure(log2_batch=log2_batch)
    title = fig.axes[0].get_title()
    plt.close(fig)
    assert f"more than 30% off in {np.mean(np.abs(stds - 1) > 0.3):.0%}" in title


def test_use_style_finds_the_packaged_style_file():
    with plt.style.context("default"):
        use_style()
        assert plt.rcParams["axes.spines.top"] is False


# ---------------------------------------------------------------- graph and backward walk (03)

def test_graph_nodes_are_the_cache_entries_plus_the_two_products():
    _, cache = batchnorm_forward(*tiny_batch()[:3], {"mode": "train"})
    assert set(cache) - {"eps"} <= set(graph.NODES)
    assert set(graph.NODES) - set(cache) == {"gx", "out"}
    assert all(a in graph.NODES and b in graph.NODES for a, b in graph.EDGES)


def test_shapes_in_the_figure_match_the_forward_pass():
    x, gamma, beta, _ = tiny_batch(N=5, D=3)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    symbolic = {(5, 3): "(N, D)", (3,): "(D,)"}
    for name, node in graph.NODES.items():
        if name in cache:
            assert node.shape == symbolic[np.shape(cache[name])], name


def test_x_and_xmu_fan_out_to_two_nodes():
    consumers = {}
    for src, dst in graph.EDGES:
        consumers.setdefault(src, []).append(dst)
    assert sorted(consumers["x"]) == ["mu", "xmu"]
    assert sorted(consumers["xmu"]) == ["sq", "x_hat"]


def test_forward_figure_draws_every_node_edge_and_shape():
    fig, ax = plt.subplots()
    graph.draw_forward_graph(ax)
    assert fig.axes == [ax]
    texts = _texts(fig)
    for node in graph.NODES.values():
        assert node.label in texts
    assert texts.count("(N, D)") == 6 and texts.count("(D,)") == 6
    assert sum(isinstance(p, FancyBboxPatch) for p in ax.patches) == len(graph.NODES)
    assert sum(isinstance(p, FancyArrowPatch) for p in ax.patches) == len(graph.EDGES)
    plt.close(fig)


def test_backward_steps_visit_every_node_once_in_reverse_topological_order():
    steps = graph.backward_steps(*tiny_batch())
    order = [s.node for s in steps]
    assert sorted(order) == sorted(graph.NODES)
    position = {n: i for i, n in enumerate(order)}
    for src, dst in graph.EDGES:  # a node's gradient is known only after its consumers'
        assert position[dst] < position[src], (src, dst)
    for s in steps:  # gradient flows back along exactly the node's outgoing edges
        assert set(s.via) == {e for e in graph.EDGES if e[0] == s.node}


def test_backward_steps_show_the_staged_gradients_and_their_paths():
    x, gamma, beta, dout = tiny_batch()
    steps = {s.node: s for s in graph.backward_steps(x, gamma, beta, dout)}
    for name, s in steps.items():  # the gradient has the shape of the node's value
        expected = x.shape if graph.NODES[name].shape == "(N, D)" else gamma.shape
        assert s.value.shape == expected, name
    assert {n for n, s in steps.items() if s.paths} == {"xmu", "mu", "x"}
    assert "N paths" in steps["var"].note and "sums" in steps["mu"].note


@pytest.mark.parametrize("step", [0, 5, 9, 10, 11])
def test_backward_demo_highlights_the_node_and_shows_its_derivative(step):
    s = graph.backward_steps(*tiny_batch())[step]
    fig = graph.BACKWARD_DEMO.figure(step=step)
    texts = _texts(fig)
    assert s.local in texts and s.grad in texts
    assert any(graph.NODES[s.node].shape in t for t in texts)
    title = fig.axes[0].get_title()
    assert title.startswith(f"Backward step {step} ") and graph.NODES[s.node].label in title
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    highlighted = [b for b in boxes if b.get_linewidth() > 1.2]
    assert len(highlighted) == 1
    red = [p for p in ax.patches if isinstance(p, FancyArrowPatch) and p.get_linewidth() > 2]
    assert len(red) == len(s.via)
    fig.canvas.draw()  # mathtext must parse
    plt.close(fig)


def test_backward_demo_clamps_the_slider_value():
    assert graph.BACKWARD_DEMO.sliders["step"].max == len(graph.backward_steps(*tiny_batch())) - 1
    for step in (-3, 99, 4.4):
        plt.close(graph.BACKWARD_DEMO.figure(step=step))


# ---------------------------------------------------------------- saturation (01) and γ/β (02)

def test_histogram_scaling_and_clipping():
    h = z_histogram(np.array([0.1, 0.2, 100.0, -100.0, -100.0]))
    assert h.shape == (len(EDGES) - 1,) and h.max() == 1.0
    assert h[0] == 1.0 and h[-1] == 0.5  # far values land in the edge bins


def test_draw_layers_labels_each_layer_with_its_saturated_fraction():
    fig, ax = plt.subplots()
    draw_layers(ax, [np.array([0.0, 5.0]), np.array([-9.0, 9.0, 1.0, 2.0])])
    labels = [t.get_text() for t in ax.texts]
    plt.close(fig)
    assert labels == ["layer 1: 50.0% sat.", "layer 2: 50.0% sat."]


def test_scale_rows_keep_each_rows_labels_clear_of_the_row_above_without_warnings():
    results = {s: mlp_forward_backward(*demo_data(), scale=s) for s in (1.0, 8.0)}
    fig = plt.figure()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "Tight layout not applied"
        axes = draw_scale_rows(fig, results)
        fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    plt.close(fig)
    above = axes[0].xaxis.get_tightbbox(renderer)  # row 1's tick labels
    for text in axes[1].texts:  # row 2's "layer l: x% sat." labels
        assert text.get_window_extent(renderer).y1 < above.y0
    boxes = sorted(t.get_window_extent(renderer).x0 for t in axes[0].texts)
    ends = sorted(t.get_window_extent(renderer).x1 for t in axes[0].texts)
    assert all(e < b for e, b in zip(ends[:-1], boxes[1:], strict=True))  # apart
    assert [ax.get_ylabel() for ax in axes] == ["c = 1", "c = 8"]


def test_unit_strips_draw_one_bar_per_unit_sorted_by_mean():
    rng = np.random.default_rng(0)
    zs = [rng.normal(loc=rng.normal(0, 5, 7), size=(50, 7)) for _ in range(2)]  # (50, 7) each
    fig = Figure()
    axes = draw_unit_strips(fig, zs)
    for ax, z in zip(axes, zs, strict=True):
        dots = ax.lines[0].get_ydata()
        np.testing.assert_allclose(dots, np.sort(z.mean(axis=0)))
        assert len(ax.collections[0].get_segments()) == 7


def test_saturation_demo_shows_centring_alone_as_a_third_bar():
    fig = plt.figure()
    draw_saturation(fig, scale=8.0)
    bars = fig.axes[1].containers
    centred = mlp_forward_backward(*demo_data(), scale=8.0, normalize="center")["z"]
    plt.close(fig)
    assert [c.get_label() for c in bars] == ["plain", "centred only", "standardised"]
    np.testing.assert_allclose([b.get_height() for b in bars[1]],
                               [saturation_fraction(z) for z in centred])


def test_saturation_demo_draws_three_panels_for_its_sliders():
    assert set(SATURATION_DEMO.sliders) == {"scale", "shift"}
    fig = plt.figure()
    draw_saturation(fig, scale=8.0, shift=-2.0)
    assert len(fig.axes) == 3
    assert "weight scale 8" in fig._suptitle.get_text()
    plt.close(fig)


def test_gamma_beta_demo_reports_its_numbers():
    fig = GAMMA_BETA_DEMO.figure(gamma=2.0, beta=1.0)
    y = 2.0 * standardized_sample() + 1.0
    frac, slope = saturation(y)
    r2 = linear_r2(y[:, None], sigmoid(y)[:, None])[0]
    titles = [ax.get_title() for ax in fig.axes]
    assert f"{frac:.0%} saturated, mean sig′ {slope:.3f}" in titles[0]
    assert f"a straight line leaves {1 - r2:.1%} unexplained" in titles[1]
    assert len(fig.axes) == 2
    plt.close(fig)


# ------------------------------------------------------------ running stats and experiments (04)

@pytest.mark.parametrize("params", [{}, {"momentum": 0.5, "batch_size": 2},
                                    {"momentum": 0.99, "batch_size": 128}])
def test_running_stats_demo_draws_two_panels(params):
    fig = RUNNING_STATS_DEMO.figure(**params)
    assert len(fig.axes) == 2
    plt.close(fig)


def test_experiment_plots_draw_each_network_in_one_colour_with_the_tables_spread():
    from course import experiments as ex

    fig, axes = plt.subplots(1, 5)
    curves = {"hist": {bn: [ex.run(bn, epochs=2, seed=s)[1] for s in (0, 1)]
                       for bn in (False, True)}}
    ex_fig.plot_curves(axes[:2], curves)
    acc = {False: np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]]),
           True: np.array([[1.0, 1.0], [0.9, 1.0], [0.8, 1.0]])}
    ex_fig.plot_sweep(axes[2], {"values": (0.1, 1.0), "acc": acc}, "x")
    sat = {"by_bn": {bn: {"init": np.zeros((2, 3)), "trained": np.ones((2, 3)),
                          "val_acc": np.array([0.5, 0.6])} for bn in (False, True)}}
    ex_fig.plot_saturation(axes[3], sat)
    ex_fig.plot_deployment(axes[4], {"acc": {"test mode": 0.9, "batches of 1": 0.1}})
    # Colour per network, the same in every panel.
    for ax in axes[:4]:
        for line in ax.lines:
            label = line.get_label()
            if "BN" in label:
                want = ex_fig.COLORS["with BN" in label]
                assert line.get_color() == want, (label, line.get_color())
    # The band is mean ± sd (ddof=1), as the tables print.
    band = axes[2].collections[0].get_paths()[0].vertices[:, 1]
    low = acc[False].mean(axis=0) - np.std(acc[False], axis=0, ddof=1)
    assert np.isclose(band.min(), low.min())
    # Chance is labelled wherever it is drawn; integer epochs.
    for ax in (axes[1], axes[2], axes[4]):
        assert "chance (10 classes)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert all(float(t).is_integer() for t in axes[1].get_xticks())
    assert axes[0].get_legend() is not None
    plt.close(fig)
