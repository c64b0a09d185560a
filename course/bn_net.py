"""The network students wire themselves (notebook 07): {affine -> BN -> ReLU} x L -> affine ->
softmax, as one loss function over a dict of parameters, in the style of cs231n's
FullyConnectedNet."""

import numpy as np

from course.batchnorm import batchnorm_backward, batchnorm_forward
from course.claims import Claim
from course.gradcheck import numerical_gradient, rel_error
from course.layers import affine_backward, affine_forward, relu_backward, relu_forward, softmax_loss
from course.optim import SGD


def init_bn_net(sizes, seed=0):
    """Parameters W1, b1, gamma1, beta1, ..., W{L+1}, b{L+1} (He-scaled weights) and one empty
    bn_param per hidden layer, for layer sizes (D, H1, ..., HL, C)."""
    rng = np.random.default_rng(seed)
    params, L = {}, len(sizes) - 2
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False), start=1):
        params[f"W{i}"] = rng.normal(0.0, np.sqrt(2.0 / d_in), (d_in, d_out))  # (D_in, D_out)
        params[f"b{i}"] = np.zeros(d_out)  # (D_out,)
        if i <= L:
            params[f"gamma{i}"], params[f"beta{i}"] = np.ones(d_out), np.zeros(d_out)  # (D_out,)
    return params, [{} for _ in range(L)]


def bn_net_loss(X, params, bn_params, y=None, reg=0.0):
    """Class scores (N, C) in test mode when y is None; else, in train mode, (loss, grads) with
    one gradient per parameter and the L2 term 0.5 * reg * sum(W**2) over the weight matrices."""
    L = len(bn_params)
    mode = "test" if y is None else "train"
    caches, h = [], X  # (N, D)
    for i in range(1, L + 1):
        bn_params[i - 1]["mode"] = mode
        z, aff = affine_forward(h, params[f"W{i}"], params[f"b{i}"])  # (N, H_i)
        zn, bn = batchnorm_forward(z, params[f"gamma{i}"], params[f"beta{i}"], bn_params[i - 1])
        h, act = relu_forward(zn)  # (N, H_i)
        caches.append((aff, bn, act))
    scores, last = affine_forward(h, params[f"W{L + 1}"], params[f"b{L + 1}"])  # (N, C)
    if y is None:
        return scores

    loss, dscores = softmax_loss(scores, y)  # dscores (N, C)
    loss += 0.5 * reg * sum(np.sum(params[f"W{i}"] ** 2) for i in range(1, L + 2))
    grads = {}
    dh, grads[f"W{L + 1}"], grads[f"b{L + 1}"] = affine_backward(dscores, last)
    for i in range(L, 0, -1):
        aff, bn, act = caches[i - 1]
        dzn = relu_backward(dh, act)  # (N, H_i)
        dz, grads[f"gamma{i}"], grads[f"beta{i}"] = batchnorm_backward(dzn, bn)
        # dz sums to zero over the batch (BN subtracts the batch mean), so db_i = 0 exactly.
        dh, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(dz, aff)
    for i in range(1, L + 2):
        grads[f"W{i}"] = grads[f"W{i}"] + reg * params[f"W{i}"]  # d(0.5 reg W^2)/dW = reg W
    return loss, grads


def train_bn_net(loss_fn, params, bn_params, X, y, lr=0.05, epochs=3, batch_size=64, reg=0.0,
                 seed=0):
    """SGD with momentum on loss_fn(X, params, bn_params, y, reg); params change in place.
    Returns the loss of every step."""
    rng, opt, losses = np.random.default_rng(seed), SGD(lr), []
    for _ in range(epochs):
        order = rng.permutation(len(X))  # (N,)
        for start in range(0, len(X) - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            loss, grads = loss_fn(X[idx], params, bn_params, y[idx], reg)
            opt.step([(k, params[k], grads[k]) for k in sorted(params)])
            losses.append(loss)
    return losses


def bn_net_accuracy(loss_fn, params, bn_params, X, y):
    """Test-mode accuracy: the scores loss_fn returns without labels."""
    return float(np.mean(np.argmax(loss_fn(X, params, bn_params), axis=1) == y))


def gradient_check(loss_fn, sizes=(6, 5, 4, 3), reg=0.1, seed=0):
    """Analytic against centred-difference gradients of loss_fn for every parameter of a net with
    non-zero biases and random gamma, beta (batch of 8): {name: (kind, value)} with kind
    "rel_error" or, for the biases before BN (true gradient 0), "max |gradient|"."""
    rng = np.random.default_rng(seed)
    params, bn_params = init_bn_net(sizes, seed=seed)
    L = len(sizes) - 2
    for i, H in enumerate(sizes[1:-1], start=1):
        params[f"gamma{i}"], params[f"beta{i}"] = rng.uniform(0.5, 2, H), rng.normal(size=H)
        params[f"b{i}"] = rng.normal(size=H)  # non-zero: the loss still cannot depend on it
    X, y = rng.normal(1.0, 2.0, (8, sizes[0])), rng.integers(0, sizes[-1], 8)  # (8, D), (8,)
    _, grads = loss_fn(X, params, bn_params, y, reg)
    out = {}
    for name, value in params.items():
        num = numerical_gradient(
            lambda v, n=name: loss_fn(X, {**params, n: v}, [{} for _ in range(L)], y, reg)[0],
            value.copy())
        if name in {f"b{i}" for i in range(1, L + 1)}:  # before BN: judged by absolute size
            out[name] = ("max |gradient|", max(np.abs(grads[name]).max(), np.abs(num).max()))
        else:
            out[name] = ("rel_error", rel_error(grads[name], num))
    return out


def train_seeds(loss_fn, data, seeds, lr=0.05, epochs=3, reg=1e-4):
    """Train 64 -> 64 -> 64 -> 10 with loss_fn per seed: array (seeds, [first loss, mean loss of
    the last 20 steps, train acc, val acc]) and the largest |b1| after training."""
    rows, b1 = [], 0.0
    for seed in seeds:
        params, bn_params = init_bn_net((64, 64, 64, 10), seed=seed)
        losses = train_bn_net(loss_fn, params, bn_params, data.X_train, data.y_train, lr=lr,
                              epochs=epochs, reg=reg, seed=seed)
        rows.append((losses[0], np.mean(losses[-20:]),
                     bn_net_accuracy(loss_fn, params, bn_params, data.X_train, data.y_train),
                     bn_net_accuracy(loss_fn, params, bn_params, data.X_val, data.y_val)))
        b1 = max(b1, float(np.abs(params["b1"]).max()))
    return np.array(rows), b1


def claims(check, trained=None):
    """What the gradient check (and training, if given) show; from gradient_check, train_seeds."""
    rel = {n: v for n, (kind, v) in check.items() if kind == "rel_error"}
    zero = {n: v for n, (kind, v) in check.items() if kind != "rel_error"}
    out = [Claim("every weight, γ, β and the classifier's bias agree with the numerical gradient",
                 max(rel.values()) < 1e-6, {"largest rel_error": max(rel.values())},
                 "two hidden layers, random γ/β, non-zero biases, reg 0.1"),
           Claim("the biases before BN have gradient zero, analytic and numerical alike",
                 max(zero.values()) < 1e-7, {"largest |gradient|": max(zero.values())})]
    if trained is not None:
        rows, b1 = trained
        out += [Claim("the network learns the digits on every seed (validation accuracy above 0.9)",
                      rows[:, 3].min() > 0.9, {"worst seed": rows[:, 3].min()},
                      f"{len(rows)} seeds, 3 epochs, lr 0.05"),
                Claim("b1 never moves from zero during training", b1 < 1e-9, {"max |b1|": b1})]
    return out
