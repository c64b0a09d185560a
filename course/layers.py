"""Small layers for plain numpy networks: forward returns (out, cache), backward uses the cache."""

import numpy as np


def affine_forward(x, w, b):
    """out = x @ w + b."""
    out = x @ w + b  # (N, D) @ (D, M) + (M,) -> (N, M)
    return out, (x, w)


def affine_backward(dout, cache):
    """Gradients of the affine layer w.r.t. x, w and b."""
    x, w = cache
    dx = dout @ w.T  # (N, M) @ (M, D) -> (N, D)
    dw = x.T @ dout  # (D, N) @ (N, M) -> (D, M)
    db = dout.sum(axis=0)  # (M,)
    return dx, dw, db


def sigmoid(z):
    """Logistic function, written to avoid overflow in exp for large |z|."""
    e = np.exp(-np.abs(z))  # in (0, 1]: never overflows
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_grad(z):
    """Derivative of the sigmoid, sigma(z) * (1 - sigma(z)); at most 1/4, at z = 0."""
    s = sigmoid(z)
    return s * (1 - s)


def sigmoid_forward(x):
    """Sigmoid layer."""
    out = sigmoid(x)
    return out, out


def sigmoid_backward(dout, cache):
    """Backward through the sigmoid, reusing its output."""
    s = cache
    return dout * s * (1 - s)


def relu_forward(x):
    """ReLU layer."""
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """Backward through ReLU: gradient passes where the input was positive."""
    return dout * (cache > 0)


def softmax_loss(scores, y):
    """Mean softmax cross-entropy loss and its gradient w.r.t. the scores."""
    shifted = scores - scores.max(axis=1, keepdims=True)  # (N, C) stable exp
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, C)
    N = scores.shape[0]
    loss = -log_probs[np.arange(N), y].mean()
    dscores = np.exp(log_probs)  # (N, C)
    dscores[np.arange(N), y] -= 1
    return float(loss), dscores / N


def dropout_forward(x, p, rng, training):
    """Inverted dropout: zero each unit with probability p and scale the rest by 1 / (1 - p)."""
    if not training or p == 0:
        return x, None
    mask = (rng.random(x.shape) >= p) / (1 - p)  # (N, D)  expected value 1, so eval is identity
    return x * mask, mask


def dropout_backward(dout, mask):
    """Backward through dropout: the gradient flows only through the kept units."""
    return dout if mask is None else dout * mask
