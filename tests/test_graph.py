"""The computational-graph figure and backward walk (notebook 03), and the γ/β demo (02)."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from course import gamma_beta, graph
from course.batchnorm import batchnorm_backward, batchnorm_forward
from course.layers import sigmoid

CACHE_KEYS = {"x", "mu", "xmu", "sq", "var", "std", "inv_std", "x_hat", "gamma", "beta", "eps"}


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]


def test_graph_nodes_are_the_cache_entries_plus_the_two_products():
    _, cache = batchnorm_forward(*graph.tiny_batch()[:3], {"mode": "train"})
    assert set(cache) - {"eps"} <= set(graph.NODES)
    assert set(graph.NODES) - set(cache) == {"gx", "out"}
    assert all(a in graph.NODES and b in graph.NODES for a, b in graph.EDGES)


def test_shapes_in_the_figure_match_the_forward_pass():
    x, gamma, beta, _ = graph.tiny_batch(N=5, D=3)
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
    fig = plt.figure()
    graph.draw_forward_graph(fig)
    (ax,) = fig.axes
    texts = _texts(fig)
    for node in graph.NODES.values():
        assert node.label in texts
    assert texts.count("(N, D)") == 6 and texts.count("(D,)") == 6
    assert sum(isinstance(p, FancyBboxPatch) for p in ax.patches) == len(graph.NODES)
    assert sum(isinstance(p, FancyArrowPatch) for p in ax.patches) == len(graph.EDGES)
    plt.close(fig)


def test_backward_steps_visit_every_node_once_in_reverse_topological_order():
    steps = graph.backward_steps(*graph.tiny_batch())
    order = [s.node for s in steps]
    assert sorted(order) == sorted(graph.NODES)
    position = {n: i for i, n in enumerate(order)}
    for src, dst in graph.EDGES:  # a node's gradient is known only after its consumers'
        assert position[dst] < position[src], (src, dst)
    for s in steps:  # gradient flows back along exactly the node's outgoing edges
        assert set(s.via) == {e for e in graph.EDGES if e[0] == s.node}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_backward_steps_end_in_the_reference_gradients(seed):
    x, gamma, beta, dout = graph.tiny_batch(N=4, D=3, seed=seed)
    steps = {s.node: s for s in graph.backward_steps(x, gamma, beta, dout)}
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx, dgamma, dbeta = batchnorm_backward(dout, cache)
    np.testing.assert_allclose(steps["x"].value, dx, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(steps["gamma"].value, dgamma, rtol=1e-12)
    np.testing.assert_allclose(steps["beta"].value, dbeta, rtol=1e-12)
    for name, s in steps.items():  # the gradient has the shape of the node's value
        expected = x.shape if graph.NODES[name].shape == "(N, D)" else gamma.shape
        assert s.value.shape == expected, name


def test_mu_sigma_and_x_show_their_several_paths():
    x, gamma, beta, dout = graph.tiny_batch()
    steps = {s.node: s for s in graph.backward_steps(x, gamma, beta, dout)}
    for name in ("xmu", "mu", "x"):
        parts = list(steps[name].paths.values())
        assert len(parts) == 2
        np.testing.assert_allclose(parts[0] + parts[1], steps[name].value, rtol=1e-12)
    # The variance path adds nothing to dmu (the deviations sum to zero) but a lot to dxmu.
    np.testing.assert_allclose(steps["mu"].paths["via sq -> var"], 0.0, atol=1e-12)
    assert np.abs(steps["xmu"].paths["via sq -> var"]).max() > 0.1
    assert "N paths" in steps["var"].note and "sums" in steps["mu"].note
    assert not np.allclose(dout, 1.0)


@pytest.mark.parametrize("step", [0, 5, 9, 10, 11])
def test_backward_demo_highlights_the_node_and_shows_its_derivative(step):
    s = graph.backward_steps(*graph.tiny_batch())[step]
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
    for step in (-3, 99, 4.4):
        plt.close(graph.BACKWARD_DEMO.figure(step=step))


# ---------------------------------------------------------------- γ/β demo (notebook 02)

def test_saturation_counts_units_beyond_the_course_threshold():
    z = np.array([-4.5, -2.0, 0.0, 3.9, 6.0])  # the threshold is |z| > 4, as in notebook 01
    frac, slope = gamma_beta.saturation(z)
    assert frac == pytest.approx(2 / 5)
    assert slope == pytest.approx(np.mean(sigmoid(z) * (1 - sigmoid(z))))
    assert gamma_beta.saturation(np.zeros(3)) == (0.0, 0.25)


def test_sample_is_standardised_and_bimodal():
    x_hat = gamma_beta.standardized_sample()
    assert abs(x_hat.mean()) < 1e-12 and x_hat.std() == pytest.approx(1.0)
    counts, _ = np.histogram(x_hat, bins=[-3, -0.3, 0.3, 3])
    assert counts[1] < 0.05 * counts.sum()  # few units between the two groups


def test_larger_gamma_saturates_more_and_lowers_the_mean_slope():
    x_hat = gamma_beta.standardized_sample()
    stats = [gamma_beta.saturation(g * x_hat) for g in (0.5, 1.0, 2.0, 4.0)]
    fracs, slopes = zip(*stats, strict=True)
    assert list(fracs) == sorted(fracs) and list(slopes) == sorted(slopes, reverse=True)
    assert fracs[1] == 0.0 and fracs[3] > 0.3


def test_gamma_beta_demo_reports_its_numbers():
    fig = gamma_beta.GAMMA_BETA_DEMO.figure(gamma=2.0, beta=1.0)
    frac, slope = gamma_beta.saturation(2.0 * gamma_beta.standardized_sample() + 1.0)
    titles = [ax.get_title() for ax in fig.axes]
    assert f"saturated: {frac:.0%}   mean σ′: {slope:.3f}" in titles
    assert len(fig.axes) == 2
    plt.close(fig)
