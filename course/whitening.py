"""Full whitening (PCA, ZCA) against BN's per-feature standardisation: what decorrelating the
inputs buys, what it costs as D grows, and why its backward pass is the hard part."""

import numpy as np

from course.claims import Claim
from course.mlp import MLP
from course.optim import SGD
from course.train import train


def whitening_matrix(X, kind="zca", eps=1e-5):
    """Mean (D,) and matrix M (D, D) so that (X - mean) @ M has (nearly) identity covariance:
    PCA rotates onto the eigenvectors and rescales, ZCA rotates back (M is then symmetric)."""
    mu = X.mean(axis=0)  # (D,)
    Xc = X - mu  # (N, D)
    lam, U = np.linalg.eigh(Xc.T @ Xc / len(X))  # (D,), (D, D)
    M = U / np.sqrt(lam + eps)  # (D, D)  PCA: column j is u_j / sqrt(lambda_j + eps)
    return mu, (M @ U.T if kind == "zca" else M)


def whiten(X, kind="zca", eps=1e-5):
    """X whitened with its own statistics."""
    mu, M = whitening_matrix(X, kind, eps)
    return (X - mu) @ M  # (N, D)


def condition_number(X, tol=1e-10):
    """Largest / smallest nonzero eigenvalue of the covariance of X, and how many are zero."""
    Xc = X - X.mean(axis=0)  # (N, D)
    lam = np.linalg.eigvalsh(Xc.T @ Xc / len(X))  # (D,)
    keep = lam > tol * lam.max()
    return float(lam[keep].max() / lam[keep].min()), int((~keep).sum())


def fixed_budget(digits, kinds=("standardized", "zca", "pca"), sizes=(64, 10), seeds=range(5),
                 epochs=1, lr=0.1, eps=0.1):
    """Validation accuracy of a network trained for a fixed budget on each input transform,
    statistics from the training split: {kind: array (seeds,)}. sizes=(64, 10) is softmax
    regression."""
    out = {}
    for kind in kinds:
        if kind == "standardized":
            Xt, Xv = digits.X_train, digits.X_val  # already standardised per feature
        else:
            mu, M = whitening_matrix(digits.X_train, kind, eps)
            Xt, Xv = (digits.X_train - mu) @ M, (digits.X_val - mu) @ M  # (N, D)
        out[kind] = np.array([train(MLP(sizes, seed=s), Xt, digits.y_train, Xv, digits.y_val,
                                    SGD(lr), epochs=epochs, seed=s).val_acc[-1] for s in seeds])
    return out


SIZES = ((64, 10), (64, 64, 64, 10))  # softmax regression and two hidden layers (notebook 07)

EIGH_FLOPS_PER_D3 = 9  # a symmetric eigendecomposition with eigenvectors: roughly 9 D^3 flops


def flops(N, D):
    """Approximate flop counts for one batch (N, D): per-feature standardisation (means,
    variances, apply: about 5 N D) against full whitening (covariance 2 N D^2, eigendecomposition
    ~9 D^3, applying the matrix 2 N D^2)."""
    per_feature = 5 * N * D
    full = 2 * N * D**2 + EIGH_FLOPS_PER_D3 * D**3 + 2 * N * D**2
    return per_feature, full


def batch_covariance_spectrum(X, batch_size, seed=0, tol=1e-10):
    """For one random batch: rank of its covariance, number of (near) zero eigenvalues, and the
    smallest gap between distinct-index eigenvalues relative to the largest. The backward pass
    of whitening divides by these gaps (d u_j involves 1/(lambda_i - lambda_j)) and by
    sqrt(lambda + eps): repeated or zero eigenvalues make it ill-defined or huge."""
    idx = np.random.default_rng(seed).choice(len(X), batch_size, replace=False)
    Xc = X[idx] - X[idx].mean(axis=0)  # (B, D)
    lam = np.linalg.eigvalsh(Xc.T @ Xc / batch_size)  # (D,) ascending
    zero = lam <= tol * lam.max()
    return {"rank": int((~zero).sum()), "zero_eigenvalues": int(zero.sum()),
            "min_relative_gap": float(np.min(np.diff(lam)) / lam.max())}


def claims(X, cond_trained, accs, spectrum):
    """What whitening buys and what it breaks: X the standardised training digits, cond_trained
    the condition number of the whitened inputs the networks trained on, accs a list of
    fixed_budget results, spectrum from batch_covariance_spectrum."""
    cond_std = condition_number(X)[0]
    spread_of_means = max(np.ptp([v.mean() for v in acc.values()]) for acc in accs)
    return [
        Claim("whitening (ε = 0.1, as trained on) takes the condition number from the hundreds to "
              "a few", cond_std > 100 and cond_trained < 5,
              {"standardised": cond_std, "whitened, ε = 0.1": cond_trained}),
        Claim("on the digits it buys no accuracy: every input transform ends within 0.03 after "
              "one epoch", spread_of_means < 0.03, {"largest difference of means": spread_of_means},
              f"{len(next(iter(accs[0].values())))} seeds, softmax regression and 2 hidden layers"),
        Claim("a batch covariance of 64 digits is singular, with repeated eigenvalues",
              spectrum["zero_eigenvalues"] > 0 and spectrum["min_relative_gap"] < 1e-12,
              {"zero eigenvalues": spectrum["zero_eigenvalues"], "rank": spectrum["rank"]}),
    ]
