"""A small CNN for the 8x8 digits: [conv -> (norm) -> ReLU -> 2x2 pool] blocks -> affine."""

import numpy as np

from course.claims import Claim
from course.conv import conv_backward, conv_forward, maxpool_backward, maxpool_forward
from course.dataset import load_digits
from course.layers import affine_backward, affine_forward, relu_backward, relu_forward
from course.network import Network
from course.norm_layers import make_norm
from course.optim import SGD
from course.train import accuracy, train


class SmallCNN(Network):
    """[conv3x3 -> (norm) -> ReLU -> pool2x2] per entry of `channels`, then affine to classes."""

    def __init__(self, channels=(8, 16), norm=None, groups=2, in_shape=(1, 8, 8), classes=10,
                 weight_scale=None, seed=0):
        rng = np.random.default_rng(seed)
        self.in_shape = in_shape
        C, H, W = in_shape
        self.conv_W, self.conv_b, self.norms = [], [], []
        for F in channels:
            # He initialisation over the filter's fan-in; a number overrides it (for sweeps).
            scale = np.sqrt(2.0 / (C * 9)) if weight_scale is None else weight_scale
            self.conv_W.append(rng.normal(0.0, scale, (F, C, 3, 3)))  # (F, C, 3, 3)
            self.conv_b.append(np.zeros(F))  # (F,)
            self.norms.append(make_norm(norm, F, groups))
            C, H, W = F, H // 2, W // 2
        self.fc_W = rng.normal(0.0, np.sqrt(2.0 / (C * H * W)), (C * H * W, classes))  # (D, K)
        self.fc_b = np.zeros(classes)  # (K,)
        self.grads = {}
        self.features = []  # conv outputs before normalisation, kept for diagnostics

    def mode_layers(self):
        """The normalisation layers (None where a block has none)."""
        return self.norms

    def forward(self, X):
        """Class scores (N, K) for images X (N, C, H, W), or flat rows (N, C*H*W) of them."""
        h = X.reshape(len(X), *self.in_shape) if X.ndim == 2 else X  # (N, C, H, W)
        self._caches, self.features = [], []
        for W, b, norm in zip(self.conv_W, self.conv_b, self.norms, strict=True):
            h, conv_cache = conv_forward(h, W, b, {"stride": 1, "pad": 1})  # (N, F, H, W)
            self.features.append(h)
            if norm is not None:
                h = norm.forward(h)  # (N, F, H, W)
            h, relu_cache = relu_forward(h)
            h, pool_cache = maxpool_forward(h)  # (N, F, H/2, W/2)
            self._caches.append((conv_cache, relu_cache, pool_cache))
        self._shape = h.shape
        scores, self._fc_cache = affine_forward(h.reshape(len(h), -1), self.fc_W, self.fc_b)
        return scores  # (N, K)

    def backward(self, dscores):
        """Backpropagate dscores; gradients land in self.grads (norm layers keep their own)."""
        dh, self.grads["fc_W"], self.grads["fc_b"] = affine_backward(dscores, self._fc_cache)
        dh = dh.reshape(self._shape)  # (N, F, H/2, W/2)
        for i in reversed(range(len(self.conv_W))):
            conv_cache, relu_cache, pool_cache = self._caches[i]
            dh = relu_backward(maxpool_backward(dh, pool_cache), relu_cache)  # (N, F, H, W)
            if self.norms[i] is not None:
                dh = self.norms[i].backward(dh)
            dh, self.grads[f"conv{i}_W"], self.grads[f"conv{i}_b"] = conv_backward(dh, conv_cache)
        return dh

    def params(self):
        """(name, value, grad) of every learnable array: conv{i}_W, conv{i}_b (or norm{i}.gamma
        and norm{i}.beta, which do the bias's job), then fc_W and fc_b."""
        out = []
        for i, (W, b, norm) in enumerate(zip(self.conv_W, self.conv_b, self.norms, strict=True)):
            out += self.layer_params(W, b, norm, train_bias=norm is None,
                                     names=(f"conv{i}_W", f"conv{i}_b", f"norm{i}"))
        return out + self.layer_params(self.fc_W, self.fc_b, None, True, ("fc_W", "fc_b", None))


def fit(norm=None, lr=0.05, epochs=3, batch_size=32, groups=2, seed=0, scale=1.0):
    """Train a SmallCNN on the digits images (raw pixels 0..16 times scale) with SGD momentum."""
    d = load_digits()
    model = SmallCNN(norm=norm, groups=groups, seed=seed)
    hist = train(model, d.images("train") * scale, d.y_train, d.images("val") * scale, d.y_val,
                 SGD(lr), epochs=epochs, batch_size=batch_size, seed=seed)
    return model, hist


def companion_noise(model, X, batch_size, trials=10, probe=4, seed=0):
    """How much the train-mode scores of `probe` fixed images move when the other images of their
    batch are redrawn: std across trials, averaged, relative to the spread of all scores."""
    rng = np.random.default_rng(seed)
    fixed, rest = X[:probe], X[probe:]
    scores = []  # per trial: (probe, K)
    with model.predicting("batch"):
        for _ in range(trials):
            others = rest[rng.choice(len(rest), batch_size - 1, replace=False)]
            # Each probe image gets the same batch_size - 1 companions; it sits first.
            scores.append([model.forward(np.concatenate([img[None], others]))[0]
                           for img in fixed])
    scores = np.array(scores)  # (trials, probe, K)
    return float(scores.std(axis=0).mean() / scores.std())


def batch_dependence(models, X, y, batch_sizes, seed=0):
    """Per model: companion_noise and train-mode accuracy on random batches of each size
    (running statistics untouched): {name: (noise list, accuracy list)}."""
    order = np.random.default_rng(seed).permutation(len(y))  # random batch mates
    return {name: ([companion_noise(m, X, B) for B in batch_sizes],
                   [accuracy(m, X, y, B, statistics="batch", order=order) for B in batch_sizes])
            for name, m in models.items()}


# The plain network on raw pixels (0..16), the control with the input scale removed (pixels / 16,
# in [0, 1]), and BN on raw pixels: {label: (norm, pixel scale)}.
SETUPS = {"no BN": (None, 1.0), "no BN, pixels / 16": (None, 1 / 16), "BN": ("batch", 1.0)}


def lr_runs(lrs=(0.01, 0.05), epochs=3, seed=0):
    """fit() for every set-up of SETUPS at each learning rate, one seed:
    {(setup, lr): (model, History)}."""
    return {(name, lr): fit(norm, lr=lr, epochs=epochs, seed=seed, scale=scale)
            for name, (norm, scale) in SETUPS.items() for lr in lrs}


def claims(runs, dependence=None, batch_sizes=None):
    """What the CNN runs (one seed) and, if given, the batch dependence show."""
    lrs = sorted({lr for _, lr in runs})
    final = {key: hist.val_acc[-1] for key, (_, hist) in runs.items()}
    bn = {lr: final["BN", lr] for lr in lrs}
    raw = {lr: final["no BN", lr] for lr in lrs}
    scaled = {lr: final["no BN, pixels / 16", lr] for lr in lrs}
    # Share of BN's lead over the plain network on raw pixels that scaling the pixels removes.
    removed = {lr: (scaled[lr] - raw[lr]) / (bn[lr] - raw[lr]) for lr in lrs}
    lo, hi = lrs[0], lrs[-1]
    cond = "one seed (seed 0), 3 epochs"
    out = [Claim("on raw pixels, with BN the CNN ends ahead of the plain one at every learning "
                 "rate, by over 10 points", all(bn[lr] > raw[lr] + 0.1 for lr in lrs),
                 {f"lr {lr}": f"{bn[lr]:.3f} vs {raw[lr]:.3f}" for lr in lrs}, cond),
           Claim(f"scaling the pixels to [0, 1] removes most of that lead at lr {hi} (over 80 %) "
                 f"and about half of it at lr {lo}",
                 removed[hi] > 0.8 and 0.3 < removed[lo] < 0.7,
                 {f"share removed at lr {lr}": float(removed[lr]) for lr in lrs}, cond),
           Claim("BN still ends ahead of the plain network on scaled pixels at every learning "
                 "rate, by a few points",
                 all(0.02 < bn[lr] - scaled[lr] < 0.1 for lr in lrs),
                 {f"lr {lr}": f"{bn[lr]:.3f} vs {scaled[lr]:.3f}" for lr in lrs}, cond)]
    if dependence is not None:
        noise = np.asarray(dependence["batch norm"][0])
        expected = np.sqrt(batch_sizes[-1] / batch_sizes[0])
        others = [name for name in dependence if name != "batch norm"]
        out += [Claim("batch norm's score noise falls roughly like 1/√B (within a factor 1.5 over "
                      "the range)", 1 / 1.5 < (noise[0] / noise[-1]) / expected < 1.5,
                      {"measured ratio": float(noise[0] / noise[-1]),
                       "√ ratio of B": float(expected)}),
                Claim("group and layer norm give every image the same output whatever its "
                      "companions",
                      all(max(dependence[n][0]) < 1e-12 and len(set(dependence[n][1])) == 1
                          for n in others), {n: dependence[n][1][0] for n in others})]
    return out
