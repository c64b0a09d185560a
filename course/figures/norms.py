"""Which entries share one mean and variance: BN, LN, instance norm and GroupNorm on a block."""

from functools import cache

import numpy as np
from matplotlib.collections import PolyCollection

from course.figures.demo import Choice, Demo
from course.norms import KINDS, normalize

TITLES = {"batch": "Batch norm", "layer": "Layer norm", "instance": "Instance norm",
          "group": "Group norm"}
_DEPTH = np.array([0.45, 0.3])  # screen offset of one step along the H×W axis (oblique view)


def norm_set(kind, N, C, groups=2):
    """Boolean (N, C) mask of the (example, channel) pairs that share statistics with the
    pair (example 0, last channel); every set spans all H×W positions."""
    mask = np.zeros((N, C), dtype=bool)  # (N, C)
    if kind == "batch":
        mask[:, -1] = True  # one channel, every example
    elif kind == "layer":
        mask[0, :] = True  # one example, every channel
    elif kind == "instance":
        mask[0, -1] = True  # one example, one channel
    elif kind == "group":
        mask[0, C - C // groups:] = True  # one example, the last group of C/G channels
    else:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return mask


def _quad(origin, u, v):
    """The parallelogram origin, origin+u, origin+u+v, origin+v."""
    o = np.asarray(origin, dtype=float)
    return [o, o + u, o + u + v, o + v]


def _faces(kind, N, C, S, groups, color):
    """Face colour of every cell of the block, in draw_block's polygon order."""
    mask = norm_set(kind, N, C, groups)  # (N, C)
    lit = [mask[n, c] for n in range(N) for c in range(C)]  # front face
    lit += [mask[0, c] for c in range(C) for _ in range(S)]  # top face
    lit += [mask[n, -1] for n in range(N) for _ in range(S)]  # right face
    return [color if on else "#f2f2f2" for on in lit]


def _title(kind, groups):
    return TITLES[kind] + (f" (G={groups})" if kind == "group" else "")


def draw_block(ax, kind, N=6, C=6, S=4, groups=2, color="C1"):
    """Draw the (N, C, H×W) block with the set that one statistic averages over highlighted;
    returns its PolyCollection (a demo recolours it with _faces)."""
    polys = []
    right, up = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    for n in range(N):  # front face: channels across, examples down
        for c in range(C):
            polys.append(_quad((c, N - 1 - n), right, up))
    for c in range(C):  # top face: example 0, every channel, depth = H×W
        for s in range(S):
            polys.append(_quad(np.array([c, N]) + s * _DEPTH, right, _DEPTH))
    for n in range(N):  # right face: last channel, every example, depth = H×W
        for s in range(S):
            polys.append(_quad(np.array([C, N - 1 - n]) + s * _DEPTH, _DEPTH, up))
    block = ax.add_collection(PolyCollection(polys, facecolors=_faces(kind, N, C, S, groups,
                                                                      color),
                                             edgecolors="#555555", linewidths=0.6))
    ax.set_xlim(-1.2, C + S * _DEPTH[0] + 0.3)
    ax.set_ylim(-1.0, N + S * _DEPTH[1] + 0.4)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.text(C / 2, -0.6, "C (channels)", ha="center", va="center", fontsize=8)
    ax.text(-0.5, N / 2, "N (examples)", ha="center", va="center", rotation=90, fontsize=8)
    end = np.array([C, N]) + S * _DEPTH / 2
    ax.text(*(end + [0.7, -0.5]), "H×W", ha="left", va="center", fontsize=8)
    ax.set_title(_title(kind, groups), fontsize=10)
    return block


def draw_norm_axes(axes, groups=2):
    """The four normalisations side by side on four axes, each highlighting one set of shared
    statistics."""
    for ax, kind in zip(axes, KINDS, strict=True):
        draw_block(ax, kind, groups=groups)


@cache
def _demo_features():
    """Conv features of 64 real digits from a freshly initialised layer: (64, 8, 8, 8)."""
    from course.conv import conv_forward
    from course.dataset import load_digits

    X = load_digits().images("train")[:64]  # (64, 1, 8, 8) raw pixels 0..16
    w = np.random.default_rng(0).normal(0.0, np.sqrt(2.0 / 9), (8, 1, 3, 3))  # (F, C, 3, 3)
    out, _ = conv_forward(X, w, np.zeros(8), {"stride": 1, "pad": 1})
    return out  # (64, 8, 8, 8)


_STATS = (("mean", "coolwarm", (-1.5, 1.5)), ("std", "viridis", (0.0, 2.0)))


def _draw_demo(fig, kind="group", groups=2):
    """Left: the highlighted block; right: per-(example, channel) mean and std after normalising,
    each with its colour bar. Returns update(kind, groups) for the same figure."""
    fig.set_layout_engine("none")  # fixed margins: no layout pass on every redraw
    fig.set_size_inches(10, 3.6)
    ax_block, ax_mean, ax_std = fig.subplots(
        1, 3, gridspec_kw={"width_ratios": [1.2, 1, 1], "left": 0.01, "right": 0.95,
                           "bottom": 0.13, "top": 0.84, "wspace": 0.35})
    images = []
    for ax, (title, cmap, (lo, hi)) in zip((ax_mean, ax_std), _STATS, strict=True):
        im = ax.imshow(np.zeros((12, 8)), cmap=cmap, vmin=lo, vmax=hi)
        fig.colorbar(im, ax=ax, fraction=0.08, pad=0.03, ticks=np.linspace(lo, hi, 5))
        ax.set_title(f"{title} over H×W of x̂\nper (example, channel)", fontsize=9)
        ax.grid(False)
        ax.set_xlabel("channel")
        ax.set_ylabel("example")
        images.append(im)

    block = draw_block(ax_block, kind, N=6, C=8, S=4, groups=int(groups))

    def update(kind="group", groups=2):
        G = int(groups)
        block.set_facecolors(_faces(kind, 6, 8, 4, G, "C1"))
        ax_block.set_title(_title(kind, G), fontsize=10)
        x_hat = normalize(_demo_features(), kind, G)[:12]  # (12, 8, 8, 8) first 12 shown
        images[0].set_data(x_hat.mean(axis=(2, 3)))  # (12, 8)
        images[1].set_data(x_hat.std(axis=(2, 3)))  # (12, 8)

    update(kind, groups)
    # What a redraw changes, in drawing order (each heat map's spines stay on top of it).
    update.artists = [block, *ax_block.texts, ax_block.title, images[0],
                      *ax_mean.spines.values(), images[1],
                      *ax_std.spines.values()]
    return update


NORM_AXES_DEMO = Demo(
    name="norm_axes",
    draw=_draw_demo,
    sliders={"kind": Choice(KINDS, "group", "norm"),
             "groups": Choice((1, 2, 4, 8), 2, "GN: groups", only_when=("kind", "group"),
                              slider=True)},
    question="For each norm, which (example, channel) cells of the heat maps become mean 0 and "
             "std 1 one by one, and which only on average over a row or a column? Which choice "
             "makes an example's row depend on the other images in the batch?",
)


def plot_channel_stats(feats, normed):
    """Per-channel mean and variance over (N, H, W) of conv outputs (bars) and after spatial BN
    (markers on the dotted reference lines at 0 and 1, where they sit to rounding)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3), constrained_layout=True)
    channels = np.arange(feats.shape[1])
    for ax, stat, name, ref in ((axes[0], np.mean, "mean", 0.0),
                                (axes[1], np.var, "variance", 1.0)):
        ax.bar(channels, stat(feats, axis=(0, 2, 3)), width=0.6, color="C0", label="conv output")
        ax.axhline(ref, color="k", lw=0.8, ls=":")
        ax.plot(channels, stat(normed, axis=(0, 2, 3)), "D", color="C1",
                label="after spatial BN (on the dotted lines: mean 0, variance 1)")
        ax.set(xlabel="channel", ylabel=f"{name} over (N, H, W)", title=f"per-channel {name}")
    axes[1].set_yscale("log")
    # One legend for both panels, below them: inside either panel it would cover bars.
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=2,
               fontsize=8)
    return fig


# Per set-up of course.cnn.SETUPS: line style, marker and colour, so colour never carries it alone.
CNN_STYLES = {"no BN": ("--s", "C0"), "no BN, pixels / 16": (":^", "C2"), "BN": ("-o", "C1")}


def plot_lr_runs(runs):
    """Validation accuracy per epoch, one panel per learning rate, one line per set-up; runs
    from course.cnn.lr_runs."""
    import matplotlib.pyplot as plt

    lrs = sorted({lr for _, lr in runs})
    fig, axes = plt.subplots(1, len(lrs), figsize=(4.2 * len(lrs), 3), sharey=True,
                             constrained_layout=True)
    for ax, lr in zip(axes, lrs, strict=True):
        for name, (style, color) in CNN_STYLES.items():
            acc = runs[name, lr][1].val_acc
            ax.plot(range(1, len(acc) + 1), acc, style, color=color, label=name)
        ax.set(xlabel="epoch", xticks=range(1, len(acc) + 1), title=f"lr {lr}", ylim=(0, 1))
    axes[0].set_ylabel("validation accuracy")
    axes[0].legend(fontsize=8, loc="lower right", title="one seed (seed 0)", title_fontsize=8)
    return fig


def plot_companion_noise(batch_sizes, noise):
    """Relative score noise of batch norm against the batch size, with the 1/sqrt(B) line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    bs = np.array(batch_sizes)
    ax.loglog(bs, noise, "o-", label="batch norm")
    ax.loglog(bs, noise[0] * np.sqrt(bs[0] / bs), "k:", label=r"$\propto 1/\sqrt{B}$")
    ax.set(xlabel="batch size B", ylabel="relative score noise")
    ax.set_xticks(bs, [str(b) for b in bs])  # one labelled tick per measured batch size
    ax.set_yticks([0.02, 0.05, 0.1, 0.2], ["0.02", "0.05", "0.1", "0.2"])
    ax.minorticks_off()
    ax.set_title("group/layer norm: 0 to rounding (not drawn on a log axis)", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def plot_running_estimates(mean_err, var_err, mean, var, momentum=0.9):
    """Errors of the running mean (absolute) and variance (relative) per step, log scale, with
    the decay momentum**t of the initial error (running mean 0, running variance 1)."""
    import matplotlib.pyplot as plt

    steps = np.arange(1, len(mean_err) + 1)
    fig, (ax_m, ax_v) = plt.subplots(1, 2, figsize=(10, 3), constrained_layout=True)
    for ax, err, initial, color, what, ylabel, title in (
            (ax_m, mean_err, np.abs(mean).max(), "C0", "running mean",
             "max |running − population mean|", "mean: absolute error"),
            (ax_v, var_err, np.abs(1 / var - 1).max(), "C1", "running variance",
             "max |running / population var − 1|", "variance: relative error")):
        ax.semilogy(steps, err, color=color, label=what)
        ax.semilogy(steps, initial * momentum**steps, "k:", label=f"{momentum}^t × initial error")
        ax.set(xlabel="training step", ylabel=ylabel, title=title)
        ax.legend(fontsize=8)
    return fig
