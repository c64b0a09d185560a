"""The network students wire themselves (notebook 07): {affine -> BN -> ReLU} x L -> affine ->
softmax, as one loss function over a dict of parameters, in the style of cs231n's
FullyConnectedNet."""

import numpy as np

from course.batchnorm import batchnorm_backward, batchnorm_forward
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
