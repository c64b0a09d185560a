"""BN's forward computational graph, and a step-by-step walk of the backward pass along it.

The node names are the keys of the reference forward cache and of the staged backward pass
(course.batchnorm), so the figure, the walk and the exercise in notebook 03 use the same words.
"""

from dataclasses import dataclass, field
from functools import cache

import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from course.batchnorm import (
    DEFAULT_EPS,
    batchnorm_backward_staged,
    batchnorm_forward,
    tiny_batch,
)
from course.figures.demo import Demo, IntSlider


@dataclass(frozen=True)
class Node:
    """A box in the figure: its formula, the shape of its value, where it sits, how wide it is."""

    label: str
    shape: str
    xy: tuple
    width: float = 0.8


NODES = {
    "x": Node(r"$x$", "(N, D)", (0.0, 0.0), 0.6),
    "mu": Node(r"$\mu$", "(D,)", (1.2, 1.25), 0.6),
    "xmu": Node(r"$x-\mu$", "(N, D)", (2.4, 0.0)),
    "sq": Node(r"$(x-\mu)^2$", "(N, D)", (3.4, 1.25), 1.0),
    "var": Node(r"$\sigma^2$", "(D,)", (4.6, 1.25), 0.6),
    "std": Node(r"$s=\sqrt{\sigma^2+\epsilon}$", "(D,)", (6.0, 1.25), 1.5),
    "inv_std": Node(r"$1/s$", "(D,)", (7.4, 1.25), 0.6),
    "x_hat": Node(r"$\hat{x}$", "(N, D)", (7.4, 0.0), 0.6),
    "gamma": Node(r"$\gamma$", "(D,)", (7.4, -1.25), 0.6),
    "gx": Node(r"$\gamma\hat{x}$", "(N, D)", (8.6, 0.0), 0.7),
    "beta": Node(r"$\beta$", "(D,)", (8.6, -1.25), 0.6),
    "out": Node(r"$y$", "(N, D)", (9.8, 0.0), 0.6),
}
EDGES = (("x", "mu"), ("x", "xmu"), ("mu", "xmu"), ("xmu", "sq"), ("sq", "var"),
         ("var", "std"), ("std", "inv_std"), ("xmu", "x_hat"), ("inv_std", "x_hat"),
         ("x_hat", "gx"), ("gamma", "gx"), ("gx", "out"), ("beta", "out"))
_BOX_H = 0.5


@dataclass(frozen=True)
class Step:
    """One stop of the backward walk: the gradient that arrives at `node` and how it is made."""

    node: str
    local: str  # the local derivative(s), mathtext
    grad: str  # how the arriving gradient is computed, mathtext
    value: np.ndarray  # its value on the tiny batch
    via: tuple  # forward edges (node, consumer) along which gradient flows back into node
    note: str = ""
    paths: dict = field(default_factory=dict)  # path name -> contribution, where paths add


_SHARED = "shared by all N rows of the batch, so the N arriving gradients are summed"
# node -> (local derivative, how its gradient is computed, forward edges it flows back along,
# note); the order and the values come from course.batchnorm.batchnorm_backward_staged.
_STEP_TEXT = {
    "out": (r"$\partial L/\partial y$ comes from the layers above", r"$dy = \mathrm{dout}$",
            (), ""),
    "beta": (r"$\partial y_i/\partial\beta = 1$", r"$d\beta = \sum_i dy_i$",
             (("beta", "out"),), f"β is {_SHARED}."),
    "gx": (r"$\partial y/\partial(\gamma\hat{x}) = 1$", r"$d(\gamma\hat{x}) = dy$",
           (("gx", "out"),), ""),
    "gamma": (r"$\partial(\gamma\hat{x})_i/\partial\gamma = \hat{x}_i$",
              r"$d\gamma = \sum_i d(\gamma\hat{x})_i\,\hat{x}_i$", (("gamma", "gx"),),
              f"γ is {_SHARED}."),
    "x_hat": (r"$\partial(\gamma\hat{x})/\partial\hat{x} = \gamma$",
              r"$d\hat{x} = \gamma\,d(\gamma\hat{x})$", (("x_hat", "gx"),), ""),
    "inv_std": (r"$\partial\hat{x}_i/\partial(1/s) = (x_i-\mu)$",
                r"$d(1/s) = \sum_i d\hat{x}_i\,(x_i-\mu)$", (("inv_std", "x_hat"),),
                f"1/s scales every row: it is {_SHARED}."),
    "std": (r"$\partial(1/s)/\partial s = -1/s^2$", r"$ds = -d(1/s)\,/\,s^2$",
            (("std", "inv_std"),), ""),
    "var": (r"$\partial s/\partial\sigma^2 = 1/(2s)$", r"$d\sigma^2 = ds\,/\,(2s)$",
            (("var", "std"),),
            "σ² reaches y through every x̂ᵢ of its column: dσ² already holds N paths "
            "(the Σᵢ taken at 1/s)."),
    "sq": (r"$\partial\sigma^2/\partial\,\mathrm{sq}_i = 1/N$", r"$d\,\mathrm{sq}_i = d\sigma^2/N$",
           (("sq", "var"),), "σ² is a mean over the batch: each row gets an equal 1/N share "
                             "(sq is the node (x−μ)², d sq the gradient arriving there)."),
    "xmu": (r"$\partial\hat{x}/\partial(x-\mu) = 1/s$,   "
            r"$\partial(x-\mu)^2/\partial(x-\mu) = 2(x-\mu)$",
            r"$d(x-\mu) = d\hat{x}/s + 2(x-\mu)\,d\,\mathrm{sq}$",
            (("xmu", "x_hat"), ("xmu", "sq")),
            "x−μ feeds two nodes, so two paths add: directly into x̂, and through σ² "
            "(d sq: the gradient at the node sq = (x−μ)²)."),
    "mu": (r"$\partial(x-\mu)_i/\partial\mu = -1$", r"$d\mu = -\sum_i d(x-\mu)_i$",
           (("mu", "xmu"),),
           "μ is subtracted from every row and x−μ carries both paths: dμ sums "
           "2·N terms. The σ² path adds 0 here, since Σᵢ(xᵢ−μ) = 0."),
    "x": (r"$\partial(x-\mu)/\partial x = 1$,   $\partial\mu/\partial x_i = 1/N$",
          r"$dx = d(x-\mu) + d\mu/N$", (("x", "xmu"), ("x", "mu")),
          "x feeds two nodes, so two paths add: directly into x−μ, and through μ."),
}


def backward_steps(x, gamma, beta, dout, eps=DEFAULT_EPS):
    """The staged backward pass of course.batchnorm as the figure walks it: one Step per node."""
    _, c = batchnorm_forward(x, gamma, beta, {"mode": "train", "eps": eps})
    grads, paths = batchnorm_backward_staged(dout, c)
    steps = []
    for node, value in grads.items():
        local, grad, via, note = _STEP_TEXT[node]
        steps.append(Step(node, local, grad, value, via, note, paths.get(node, {})))
    return steps


def _clip(center, towards, width):
    """Where the segment from center towards another point leaves the node's box."""
    d = np.subtract(towards, center)
    t = min(width / 2 / abs(d[0]) if d[0] else np.inf, _BOX_H / 2 / abs(d[1]) if d[1] else np.inf)
    return tuple(np.add(center, t * d))


def _arrow(ax, src, dst, **style):
    a, b = NODES[src], NODES[dst]
    start, end = _clip(a.xy, b.xy, a.width + 0.08), _clip(b.xy, a.xy, b.width + 0.08)
    return ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12,
                                        **style))


def _box_style(name, current, done):
    """Face colour and edge width of a node's box: orange now, blue once known."""
    colour = "#ffb347" if name == current else "#d5e8f7" if name in done else "white"
    return colour, 1.6 if name == current else 1.0


def _via_arrows(ax, via):
    """The `via` edges drawn backwards in red: the gradient flows against the forward arrow."""
    return [_arrow(ax, dst, src, color="#d62728", lw=2.2, connectionstyle="arc3,rad=0.25")
            for src, dst in via]


def draw_graph(ax, current=None, done=(), via=()):
    """Draw the graph into ax; highlight `current`, shade `done`, draw `via` edges backwards.
    Returns the boxes by node name and the red arrows, for a demo that restyles them."""
    boxes = {}
    for name, n in NODES.items():
        colour, lw = _box_style(name, current, done)
        boxes[name] = ax.add_patch(FancyBboxPatch(
            (n.xy[0] - n.width / 2, n.xy[1] - _BOX_H / 2), n.width, _BOX_H,
            boxstyle="round,pad=0.02,rounding_size=0.1", fc=colour, ec="0.2", lw=lw))
        ax.text(*n.xy, n.label, ha="center", va="center", fontsize=12)
        ax.text(n.xy[0], n.xy[1] - _BOX_H / 2 - 0.08, n.shape, ha="center", va="top",
                fontsize=8, color="0.35")
    for src, dst in EDGES:
        _arrow(ax, src, dst, color="0.55", lw=1.0)
    arrows = _via_arrows(ax, via)
    ax.set(xlim=(-0.5, 10.3), ylim=(-1.9, 1.75))
    ax.set_axis_off()
    return boxes, arrows


def draw_forward_graph(ax):
    """The forward computational graph of batch normalisation, each node with its shape."""
    fig = ax.figure
    fig.set_size_inches(9.5, 3.2)
    fig.set_layout_engine("none")
    ax.set_position((0.01, 0.02, 0.98, 0.88))
    draw_graph(ax)
    ax.set_title(r"Forward graph of BN: $y = \gamma\,(x-\mu)/\sqrt{\sigma^2+\epsilon} + \beta$,"
                 " statistics per feature over the batch")


def _fmt(a):
    return np.array2string(np.asarray(a), precision=3, suppress_small=True, floatmode="fixed",
                           sign=" ")


@cache
def _tiny():
    """The demo's tiny batch and its backward walk, computed once."""
    batch = tiny_batch()
    return batch, backward_steps(*batch)


def draw_backward_step(fig, step=0):
    """One stop of the backward walk on the tiny batch: graph, local derivative, shape, value.
    Returns update(step) for the same figure."""
    (x, _, _, _), steps = _tiny()
    N, D = x.shape
    fig.set_size_inches(9.5, 5.6)
    fig.set_layout_engine("none")
    ax = fig.add_axes((0.01, 0.42, 0.98, 0.54))
    boxes, arrows = draw_graph(ax)
    title = ax.set_title("", fontsize=10)
    keys = ("local derivative:", "gradient:", "shape:")
    lines = []
    for i, key in enumerate(keys):
        fig.text(0.02, 0.36 - 0.065 * i, key, fontsize=10, weight="bold")
        lines.append(fig.text(0.19, 0.36 - 0.065 * i, "", fontsize=11))
    note = fig.text(0.02, 0.36 - 0.065 * 3, "", fontsize=9.5, style="italic")
    n_blocks = 1 + max(len(t.paths) for t in steps)
    blocks = [fig.text(0.02 + 0.25 * j, 0.12, "", fontsize=9, family="monospace", va="top")
              for j in range(n_blocks)]

    def update(step=0):
        k = min(max(int(round(step)), 0), len(steps) - 1)
        s = steps[k]
        done = {t.node for t in steps[:k]}
        for name, box in boxes.items():
            colour, lw = _box_style(name, s.node, done)
            box.set_facecolor(colour)
            box.set_linewidth(lw)
        for arrow in arrows:
            arrow.remove()
        arrows[:] = _via_arrows(ax, s.via)
        n = NODES[s.node]
        title.set_text(f"Backward step {k} of {len(steps) - 1}: the gradient arriving at "
                       f"{n.label}   (orange: this node, blue: gradient known, red: where it "
                       "comes from)")
        texts = (s.local, s.grad, f"{n.shape}, here {s.value.shape} on a tiny batch with "
                                  f"N={N}, D={D}")
        for line, text in zip(lines, texts, strict=True):
            line.set_text(text)
        note.set_text(s.note)
        shown = [("value", s.value)] + list(s.paths.items())
        for j, block in enumerate(blocks):
            block.set_text(f"{shown[j][0]}:\n{_fmt(shown[j][1])}" if j < len(shown) else "")

    update(step)
    return update


BACKWARD_DEMO = Demo(
    name="bn_backward_steps",
    draw=draw_backward_step,
    sliders={"step": IntSlider(0, len(NODES) - 1, 1, 0, "backward step")},  # one per node
    question="At which nodes do several gradients add up, and why do μ and σ² need a sum "
             "over the batch?",
)
