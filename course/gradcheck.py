"""Numerical gradients by centred differences, and the relative error used to compare them."""

import numpy as np

# The course's reading of a float64 rel_error (notebook 03): below CORRECT a backward pass is
# right, between the two it is suspicious, above SUSPICIOUS it is wrong.
CORRECT, SUSPICIOUS = 1e-8, 1e-5


def verdict(err):
    """The course's word for a float64 relative error: correct, suspicious or wrong."""
    return "correct" if err < CORRECT else "suspicious" if err < SUSPICIOUS else "wrong"


def rel_error(a, b):
    """Relative error of two arrays as a whole: |a - b| / (|a| + |b|) in the 2-norm."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    # Norm-wise, not element-wise: BN's dx sums to zero over the batch, so some entries sit near
    # zero, where an element-wise ratio measures rounding noise instead of a wrong gradient.
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))


def numerical_gradient(f, x, h=1e-5):
    """Gradient of the scalar function f at x, one coordinate at a time."""
    grad = np.zeros_like(x, dtype=float)  # same shape as x
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        fp = f(x)
        x[i] = old - h
        fm = f(x)
        x[i] = old  # restore: f must see the original x afterwards
        grad[i] = (fp - fm) / (2 * h)
    return grad


def numerical_gradient_array(f, x, dout, h=1e-5):
    """Gradient of sum(f(x) * dout) w.r.t. x, for an array-valued f: the vector-Jacobian product."""
    return numerical_gradient(lambda v: float(np.sum(f(v) * dout)), x, h)


def layer_rel_errors(forward, backward, x, gamma, beta, param, dout):
    """rel_error of a normalisation layer's dx and dgamma against numerical gradients, for
    forward(x, gamma, beta, param) -> (out, cache) and backward(dout, cache) -> (dx, dgamma, ...);
    param is copied for every call, so running statistics never leak between them."""
    def f(x_, g_):
        return forward(x_, g_, beta, dict(param))[0]
    _, cache = forward(x, gamma, beta, dict(param))
    dx, dgamma = backward(dout, cache)[:2]
    return (rel_error(dx, numerical_gradient_array(lambda v: f(v, gamma), x.copy(), dout)),
            rel_error(dgamma, numerical_gradient_array(lambda v: f(x, v), gamma.copy(), dout)))
