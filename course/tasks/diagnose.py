"""Diagnose a wrong output from its properties, so a mistake nobody listed still gets a hint.

A catalogued Mistake names a wrong answer only when the answer equals its planted version; the
checks here compare properties instead: shape, dtype, sign, an offset of ±β, a scale factor to the
expected (N, 1/N, √(N/(N−1)), 2, ½, γ, σ, ...), the statistics of the normalised output, and the
paths of a normalisation's gradient. A task describes what its outputs are with `views`
(Normalised, Gradient) and names its inputs' quantities with `symbols`; the words come from the
exercise (a staged backward pass hears of dmu and dvar, the closed form of its terms).
Diagnoses only ever word the message; whether a case passes is decided before, in `evaluate`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from course.batchnorm import DEFAULT_EPS


def _identity(a):
    return a


@dataclass(frozen=True)
class Normalised:
    """An output that should be gamma * x_hat + beta, with x standardised per column of `rows`."""

    source: Callable  # inputs -> (x, gamma, beta), each broadcastable to the output's shape
    eps: Callable  # inputs -> eps
    rows: Callable = _identity  # output-shaped array -> (M, F): one column per group of stats
    over: str = "per feature over the batch (axis=0)"  # where the statistics belong
    across: str = "per example (axis=1)"  # statistics along the other axis of `rows`
    stats: str = "batch"  # "batch": the batch's own statistics; "running": bn_param's
    group: str = "feature"  # what one column of `rows` is: feature, channel, example
    has_running: bool = True  # the layer keeps running statistics (batch norm, not layer norm)


@dataclass(frozen=True)
class Gradient:
    """A dx of a standardising layer: direct term + mean term + variance term per column."""

    terms: Callable  # inputs -> (x_hat, g, inv_std) in the rows layout; g = dout * gamma there
    rows: Callable = _identity  # output-shaped array -> (M, F)
    names: dict = field(default_factory=dict)  # term ("direct", "mean", "var") -> words
    hints: dict = field(default_factory=dict)  # (term, factor label) -> what to look at
    scale_hints: dict = field(default_factory=dict)  # factor label of all of dx -> hint


def eps_of(key):
    """inputs -> the ε that the case's param dict inputs[key] states, or the course default."""
    return lambda inputs: (inputs.get(key) or {}).get("eps", DEFAULT_EPS)


def term_names(mean, var, g="dout", direct="the N·dout term"):
    """Gradient.names in the closed form dx = γ/(N·σ)·(N·dout − Σdout − x̂·Σ(dout·x̂)): each sum
    term named by what it is and, in brackets, `mean` or `var` (where it comes from in this
    exercise); g is what the sums run over (dout, or dx̂ = dout·γ when γ varies inside a sum)."""
    return {"mean": f"the −Σ{g} term ({mean})", "var": f"the −x̂·Σ({g}·x̂) term ({var})",
            "direct": direct}


def _fmt(v):
    return f"{v:.3g}"


def _fmt_vec(v, n=4):
    v = np.ravel(v)
    body = ", ".join(_fmt(x) for x in v[:n])
    return f"[{body}{', …' if v.size > n else ''}]"


def _near(a, b, rtol=1e-4):
    """a ≈ b entry by entry, relative to the size of b as a whole."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-12)
    return bool(np.all(np.abs(a - b) <= rtol * scale + 1e-12))


def scalar_factors(N):
    """Named scale factors a slip typically leaves: (label, value), most telling first."""
    out = []
    if N and N > 1:
        out += [("N", N), ("1/N", 1 / N), ("N/(N − 1)", N / (N - 1)), ("(N − 1)/N", (N - 1) / N),
                ("√(N/(N − 1))", np.sqrt(N / (N - 1))), ("√((N − 1)/N)", np.sqrt((N - 1) / N)),
                ("N − 1", N - 1), ("1/(N − 1)", 1 / (N - 1))]
    out += [("2", 2.0), ("½", 0.5), ("−1", -1.0), ("100", 100.0), ("0", 0.0)]
    return out


def _vector_factors(symbols, shape):
    """Named per-feature factors (γ, 1/γ, σ, 1/σ, σ², 1/σ²) that broadcast to `shape`."""
    out = []
    for name in ("γ", "σ"):
        v = symbols.get(name)
        if v is None or np.any(v == 0):
            continue
        v = np.asarray(v, dtype=float)
        try:
            if np.broadcast_shapes(v.shape, shape) != tuple(shape):
                continue
        except ValueError:
            continue
        out += [(name, v), (f"1/{name}", 1 / v)]
        if name == "σ":
            out += [("σ²", v**2), ("1/σ²", 1 / v**2)]
    return out


GENERIC_FACTOR_HINTS = {
    "N": "a sum where a mean belongs (or an extra factor N)",
    "1/N": "a mean where a sum belongs (or one division by N too many)",
    "N − 1": "a sum where a mean belongs, divided by N − 1",
    "1/(N − 1)": "a division by N − 1",
    "N/(N − 1)": "an N − 1 where N belongs (ddof=1); batch statistics divide by N",
    "(N − 1)/N": "an N − 1 where N belongs (ddof=1); batch statistics divide by N",
    "√(N/(N − 1))": "a variance divided by N − 1 (ddof=1); normalise with the biased variance "
                    "(divide by N)",
    "√((N − 1)/N)": "a variance divided by N − 1 (ddof=1); normalise with the biased variance "
                    "(divide by N)",
    "100": "a percentage: return a fraction between 0 and 1",
    "2": "a factor 2 too many", "½": "a factor 2 missing (or a ½ too many)",
    "γ": "γ applied twice", "1/γ": "γ is missing: multiply by gamma",
    "σ": "a division by σ = √(var + ε) is missing",
    "1/σ": "one division by σ too many (or the variance where σ belongs)",
    "σ²": "a division by the variance σ² is missing", "1/σ²": "a division by σ² too many",
}


def _match_scale(got, want, N, symbols):
    """The named factor k with got ≈ k·want, if any: (label, value)."""
    if not np.any(want):
        return None
    for label, k in scalar_factors(N):
        if label != "0" and _near(got, k * want):
            return label, k
    for label, v in _vector_factors(symbols, want.shape):
        if _near(got, v * want):
            return label, v
    return None


def show_factor(label, value, N):
    """'N = 4', '1/N = 0.25 (N = 4)', '2', 'γ per feature'."""
    if np.ndim(value) > 0:
        return f"{label} per feature"
    if label == "N":
        return f"N = {N}"
    if "N" in label:
        return f"{label} = {_fmt(value)} (N = {N})"
    return label


def _scale_sentence(key, label, value, N, hints):
    hint = hints.get(label) or GENERIC_FACTOR_HINTS.get(label, "")
    return (f"`{key}` is the expected values times {show_factor(label, value, N)}"
            + (f": {hint}" if hint else ""))


def _offset(key, got, want, symbols):
    """A shift by a multiple of β."""
    beta = symbols.get("β")
    if beta is None or not np.any(beta):
        return None
    try:
        b = np.broadcast_to(beta, want.shape)
    except ValueError:
        return None
    if np.shape(beta) != want.shape and np.ndim(beta) > want.ndim:
        return None
    diff = got - want
    for k, text in ((-1, "β is missing: add beta"),
                    (-2, "β is subtracted (− beta): add it"),
                    (1, "β is added twice")):
        if _near(diff, k * b, rtol=1e-6 if want.size else 1e-4) or (
                np.allclose(diff, k * b, rtol=1e-5, atol=1e-8)):
            sign = "−" if k < 0 else "+"
            return (f"`{key}` equals the expected values {sign} {abs(k) if abs(k) > 1 else ''}β: "
                    f"{text}")
    return None


def _float32(key, got, want, dtype):
    """Computed in single precision: dtype known (check cells) or every value a float32."""
    if dtype is not None and dtype in ("float32", "float16"):
        return (f"`{key}` is {dtype}: compute in float64 (do not cast to np.{dtype}); "
                f"{dtype} keeps only about {7 if dtype == 'float32' else 3} digits")
    flat, wflat = np.ravel(got), np.ravel(want)
    if flat.size < 4 or np.all(flat == np.round(flat)):
        return None
    if np.all(flat.astype(np.float32) == flat) and not np.all(wflat.astype(np.float32) == wflat):
        return (f"`{key}` has float32 precision (every value is a float32): compute in float64; "
                "float32 keeps only about 7 digits")
    return None


def _shape(key, got, want, inputs):
    g, w = got.shape, want.shape
    text = f"`{key}` has shape {g}, expected {w}"
    batches = [np.shape(v) for v in inputs.values() if np.ndim(v) == 2]  # (N, D) inputs
    if want.ndim == 0:
        return text + ": return a single number over all entries (no axis)"
    if len(w) == 1 and len(g) == 1 and (g[0], w[0]) in batches:
        return text + ": one value per example — reduce over the batch (axis=0), not the " \
                      "features"
    if got.size == 1 and want.size > 1:
        return text + ": a single number — statistics or sums over the whole array (no axis)?"
    if len(w) == 1 and len(g) == 2 and g[1:] == w:
        return text + ": one value per entry — sum (or average) over the batch, axis=0"
    if len(w) == 2 and g == w[::-1]:
        return text + ": transposed"
    if len(g) == len(w) + 1 or (len(g) > len(w) and g[-len(w):] == w):
        return text + ": an axis too many — is a sum over the batch missing?"
    return text


def _nonfinite(key, got, normalises):
    what = "NaN" if np.any(np.isnan(got)) else "infinity"
    return (f"`{key}` contains {what}: a division by zero or by a negative number?"
            + (" (ε belongs inside the square root: sqrt(var + eps))" if normalises else ""))


def _column_stats(z):
    return z.mean(axis=0), z.std(axis=0)  # (F,), (F,)


def _implied_centre(xr, z):
    """The c of z = (x − c)/s that each column of z implies, when z is such a map of x."""
    centres = []
    for j in range(z.shape[1]):
        if np.std(z[:, j]) == 0:
            return None
        A = np.stack([np.ones_like(z[:, j]), z[:, j]], axis=1)  # (M, 2)
        (c, s), *_ = np.linalg.lstsq(A, xr[:, j], rcond=None)
        if s == 0 or np.max(np.abs(A @ [c, s] - xr[:, j])) > 1e-6 * np.max(np.abs(xr[:, j])):
            return None
        centres.append(c)
    return np.array(centres)  # (F,)


def _normalised(key, got, want, inputs, view, N):
    """Hints from the statistics of (out − β)/γ compared with those of the expected."""
    x, gamma, beta = view.source(inputs)
    with np.errstate(all="ignore"):
        shape = want.shape
        g = np.broadcast_to(gamma, shape)
        if np.any(g == 0):
            return None
        b = np.broadcast_to(beta, shape)
        z = view.rows((got - b) / g)  # (M, F)
        z0 = view.rows((want - b) / g)  # (M, F)
        xr = view.rows(np.broadcast_to(x, shape))  # (M, F)
    if not np.all(np.isfinite(z)):
        return None
    eps = view.eps(inputs)
    mean, std = _column_stats(z)
    mean0, std0 = _column_stats(z0)
    what = "(out − β)/γ" if np.any(np.asarray(beta)) or np.any(np.asarray(gamma) != 1) else key
    where = f"`{key}`" if what == key else f"{what} of `{key}`"
    tol = 1e-4 * max(1.0, float(np.max(np.abs(z0))))
    centred = np.max(np.abs(mean)) <= tol
    if view.stats == "running":
        if centred and np.max(np.abs(mean0)) > 10 * tol:
            return (f"{where} has mean 0 per {view.group} over this batch: test mode "
                    "normalised with "
                    "the batch's own statistics; use the running statistics "
                    "(running_mean, running_var) so an example's output does not depend on the "
                    "rest of the batch")
    elif not centred:
        across = z.mean(axis=1)  # (M,)
        if z.shape[1] > 1 and np.max(np.abs(across)) <= tol:
            return (f"{where} is centred {view.across}, not {view.over}: take the statistics "
                    f"{view.over}")
        if abs(float(z.mean())) <= tol and np.max(np.abs(mean)) > 10 * tol:
            return (f"{where} is centred over the whole array but not per column: the mean "
                    f"(and variance) were taken without an axis; take them {view.over}")
        centre = _implied_centre(xr, z)  # (F,) or None
        if centre is not None:
            size = max(float(np.max(np.abs(xr))), 1e-12)
            if np.allclose(centre, xr.mean(), rtol=0, atol=1e-6 * size):
                return (f"{where} was centred with the mean of the whole array (no axis): "
                        f"subtract the mean taken {view.over}")
            if np.allclose(centre, 0.0, rtol=0, atol=1e-6 * size):
                return f"{where} was not centred: subtract the mean taken {view.over}"
        tail = (" (in train mode the batch's statistics, not the running ones)"
                if view.has_running else "")
        return (f"{where} has per-{view.group} means {_fmt_vec(mean)} instead of 0: subtract "
                f"the mean taken {view.over}{tail}")
    if view.stats != "batch":
        return None
    # Centred right: is the spread right?
    var_x = xr.var(axis=0)  # (F,)
    ratio = std / np.where(std0 > 0, std0, 1)  # (F,)
    bad = ~np.isclose(ratio, 1.0, rtol=1e-5)
    if not np.any(bad):
        return None
    big = var_x > 1e3 * eps
    if np.all(bad <= ~big) and np.any(big):
        v = var_x[bad]
        start = (f"{where} has the right spread except in features whose variance is comparable "
                 f"to ε = {eps:g}: ")
        if np.allclose(std[bad], np.sqrt(v) / (np.sqrt(v) + eps), rtol=1e-3):
            return start + "ε was added outside the square root; use sqrt(var + eps)"
        if np.allclose(std[bad], 1.0, rtol=1e-3):
            return start + "ε is missing; divide by sqrt(var + eps)"
        return start + ("check where ε goes (sqrt(var + eps)) and that the variance is computed "
                        "in float64")
    # Away from ε a slip in the variance leaves a clean factor on the spread.
    clear = var_x > 30 * eps
    if np.any(clear):
        for label, k in scalar_factors(N):
            if label not in ("0", "−1") and np.allclose(ratio[clear], k, rtol=2e-2):
                return (f"{where} has per-{view.group} std {_fmt(float(np.median(std[clear])))} "
                        f"instead of {_fmt(float(np.median(std0[clear])))} (× "
                        f"{show_factor(label, k, N)}): "
                        + GENERIC_FACTOR_HINTS.get(label, "the spread is wrong"))
    return (f"{where} has per-{view.group} std {_fmt_vec(std)} instead of {_fmt_vec(std0)}: "
            "check the "
            "variance and where ε goes (x_hat = (x − μ) / sqrt(var + eps))")


def _term_sentence(view, term, label, k, N):
    name = view.names.get(term, term)
    if label == "0":
        state = "is missing"
    elif label == "−1":
        state = "has the wrong sign"
    else:
        state = f"is {show_factor(label, k, N)} times what it should be"
    hint = view.hints.get((term, label), "")
    return f"{name} {state}" + (f": {hint}" if hint else "")


def _gradient(key, got, want, inputs, view, N, symbols):
    """Which path of a normalisation's gradient is off: direct, through μ, through σ²."""
    x_hat, g, inv_std = view.terms(inputs)  # (M, F) layout
    d, d0 = view.rows(got), view.rows(want)  # (M, F)
    M = d.shape[0]
    direct = g * inv_std  # (M, F)
    coef = {"mean": -inv_std * g.mean(axis=0), "var": -inv_std * (g * x_hat).mean(axis=0)}
    r = d - d0  # (M, F)
    scale = max(float(np.max(np.abs(d0))), 1e-12)
    sentences = []
    # The error as (a·direct +) b + c·x_hat per column, least squares.
    basis = [np.ones_like(x_hat), x_hat] + ([direct] if M > 3 else [])
    fit_ok, coeffs = True, []
    for j in range(d.shape[1]):
        A = np.stack([bb[:, j] for bb in basis], axis=1)  # (M, 2 or 3)
        sol, *_ = np.linalg.lstsq(A, r[:, j], rcond=None)
        if np.max(np.abs(A @ sol - r[:, j])) > 1e-6 * scale:
            fit_ok = False
            break
        coeffs.append(sol)
    if fit_ok and coeffs:
        coeffs = np.array(coeffs)  # (F, 2 or 3)
        parts = [("mean", coeffs[:, 0]), ("var", coeffs[:, 1])]
        if coeffs.shape[1] == 3:
            parts.append(("direct", coeffs[:, 2]))
        for term, c in parts:
            if term == "direct":
                ratio, ref = 1 + c, np.ones_like(c)
            else:
                ref = coef[term]
                keep = np.abs(ref) > 1e-9 * scale
                if not np.any(keep) or np.all(np.abs(c) <= 1e-6 * scale):
                    continue
                ratio, ref = 1 + c[keep] / ref[keep], ref[keep]
            if np.allclose(ratio, 1.0, rtol=1e-5, atol=1e-8):
                continue
            found = None
            for label, k in scalar_factors(N):
                if np.allclose(ratio, k, rtol=1e-4, atol=1e-6):
                    found = (label, k)
                    break
            if found:
                sentences.append(_term_sentence(view, term, *found, N))
            else:
                sentences.append(f"{view.names.get(term, term)} is wrong (it is "
                                 f"{_fmt_vec(ratio)} times what it should be per feature)")
        if sentences:
            return f"`{key}`: " + "; ".join(sentences)
    # Properties of the right gradient: shifting x, or scaling x - μ, leaves x_hat unchanged.
    s1, s1_0 = d.sum(axis=0), d0.sum(axis=0)
    s2, s2_0 = (d * x_hat).sum(axis=0), (d0 * x_hat).sum(axis=0)
    tol = 1e-6 * scale * M
    out = []
    if np.max(np.abs(s1 - s1_0)) > tol:
        out.append(f"Σ over the batch of `{key}` is {_fmt_vec(s1)} per feature, but it must be 0 "
                   "(shifting x leaves x_hat unchanged): "
                   f"{view.names.get('mean', 'the path through μ')} is missing or wrong")
    if np.max(np.abs(s2 - s2_0)) > tol:
        out.append(f"Σ `{key}`·x̂ is {_fmt_vec(s2)} per feature instead of {_fmt_vec(s2_0)} "
                   "(≈ 0: scaling x − μ leaves x_hat unchanged): "
                   f"{view.names.get('var', 'the path through σ²')} is missing or wrong")
    if out:
        return "; ".join(out)
    return None


def _swapped(key, got, expected):
    for other, w in expected.items():
        if other != key and w.shape == got.shape and np.allclose(got, w, rtol=1e-6, atol=1e-8):
            return f"`{key}` holds what `{other}` should be"
    return None


def explain_output(task, inputs, key, got, want, expected, dtype=None):
    """One sentence on what is wrong with one output, from its properties."""
    symbols = task.symbols(inputs) if task.symbols else {}
    N = symbols.get("N")
    if got.shape != want.shape:
        return _shape(key, got, want, inputs)
    if not np.all(np.isfinite(got)):
        return _nonfinite(key, got, bool(task.views))
    view = task.views.get(key)
    for found in (_float32(key, got, want, dtype), _swapped(key, got, expected)):
        if found:
            return found
    if want.ndim == 0 and 0 <= want <= 1 and np.isclose(got, 1 - want):
        return f"`{key}` is 1 − the expected value: the complement was counted"
    if np.any(want) and _near(got, -want, rtol=1e-6):
        return f"`{key}` has the opposite sign of the expected values: a sign is flipped"
    found = _offset(key, got, want, symbols)
    if found:
        return found
    hints = view.scale_hints if isinstance(view, Gradient) else {}
    if isinstance(view, Normalised):
        x, gamma, beta = view.source(inputs)
        match = _match_scale(got - np.broadcast_to(beta, want.shape),
                             want - np.broadcast_to(beta, want.shape), N, symbols)
        if match and match[0] not in ("γ", "1/γ"):
            label, value = match
            return (f"`{key}` − β is the expected times {show_factor(label, value, N)}: "
                    + GENERIC_FACTOR_HINTS.get(label, "a scale is wrong"))
        found = _normalised(key, got, want, inputs, view, N)
        if found:
            return found
    match = _match_scale(got, want, N, symbols)
    if match:
        return _scale_sentence(key, *match, N, hints)
    beta = symbols.get("β")
    if view is None and beta is not None and np.shape(beta) == want.shape:
        match = _match_scale(got - beta, want - beta, N, symbols)
        if match:
            return _scale_sentence(f"{key}` − `β", *match, N, hints)
    if isinstance(view, Gradient):
        found = _gradient(key, got, want, inputs, view, N, symbols)
        if found:
            return found
    err = float(np.max(np.abs(got - want)))
    rel = err / max(float(np.max(np.abs(want))), 1e-300)
    if rel < 1e-3:
        return (f"`{key}` is close but not within tolerance (max error {rel:.1e} of its size): a "
                "loss of precision (float32?) or ε in a slightly different place")
    return f"`{key}` differs from the expected values (max abs error {err:.2e})"


def _join(names):
    names = [f"`{n}`" for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def right_and_wrong(names_right, names_wrong):
    """'`dgamma` and `dbeta` are right, `dx` is wrong' (empty when nothing is right)."""
    if not names_right or not names_wrong:
        return ""
    return (f"{_join(names_right)} {'is' if len(names_right) == 1 else 'are'} right, "
            f"{_join(names_wrong)} {'is' if len(names_wrong) == 1 else 'are'} wrong")


def explain_error(task, error):
    """A pointed hint for an exception, where the message alone is cryptic."""
    keys = task.cache_keys
    if keys and "values to unpack" in error:
        return (f"{error} — the cache is a dict, not a tuple: read its entries by name, e.g. "
                f"x_hat = cache['x_hat'] (keys: {', '.join(keys)})")
    if keys and error.startswith("KeyError"):
        return f"{error} — the cache has no such key; its keys are: {', '.join(keys)}"
    if "indices must be integers" in error and "not str" in error:
        return (f"{error} — something indexed by name is a tuple or list: the backward pass must "
                "read the cache in the format its forward pass stored it")
    return error


# ---------------------------------------------------------------------------------------------
# The views the tasks share


def batchnorm_view(x_of=lambda inputs: inputs["x"], stats="batch", params="bn_param",
                   affine=True):
    """The output of a (N, D) batch norm (or standardisation, affine=False) of x_of(inputs)."""
    def source(inputs):
        if affine:
            return x_of(inputs), inputs["gamma"], inputs["beta"]
        return x_of(inputs), 1.0, 0.0
    return Normalised(source=source, eps=eps_of(params), stats=stats)


STAGED = dict(
    names={"mean": "the path through μ (dmu = -dxmu.sum(axis=0), then dx = dxmu + dmu / N)",
           "var": "the path through σ² (dvar, then dsq = dvar / N, then dxmu += 2 * xmu * dsq)",
           "direct": "the direct path dxmu = dx_hat * inv_std"},
    hints={("var", "2"): "is the ½ missing in dvar = dstd * 0.5 / sqrt(var + eps) "
                         "(d√v/dv = ½/√v)?",
           ("var", "½"): "dxmu gets 2 * xmu * dsq (the 2 of d(xmu²)/dxmu)",
           ("var", "N/(N − 1)"): "dsq = dvar / N: var = sq.mean(axis=0) divides by N, not N − 1",
           ("var", "N"): "dsq = dvar / N: var = sq.mean(axis=0) shares dvar among the N rows",
           ("var", "−1"): "dstd = -dinv_std / (var + eps), since d(1/s)/ds = −1/s²",
           ("mean", "−1"): "dmu = -dxmu.sum(axis=0): xmu = x − mu, so mu enters with a minus "
                           "sign",
           ("mean", "N"): "each row gets dmu / N, since mu = x.mean(axis=0) weighs every row "
                          "by 1/N"},
    scale_hints={"1/γ": "γ is missing in dx_hat = dout * gamma",
                 "γ": "γ is applied twice: only dx_hat = dout * gamma multiplies by it",
                 "σ": "inv_std is missing somewhere: dxmu = dx_hat * inv_std",
                 "1/σ": "one factor inv_std too many"})

CLOSED = dict(
    names=term_names("the path through the mean", "the path through the variance"),
    hints={("var", "2"): "dx = γ/(N·σ)·(N·dout − Σdout − x̂·Σ(dout·x̂)) has no factor 2",
           ("var", "N/(N − 1)"): "every sum here divides by N (the biased variance), not N − 1",
           ("mean", "−1"): "the Σdout term is subtracted: N·dout − Σdout − x̂·Σ(dout·x̂)",
           ("var", "−1"): "the x̂·Σ(dout·x̂) term is subtracted"},
    scale_hints={"1/γ": "γ is missing from the prefactor γ/(N·σ)",
                 "γ": "γ is applied twice in the prefactor γ/(N·σ)",
                 "N": "the prefactor is γ/(N·σ): the 1/N is missing",
                 "1/N": "the prefactor γ/(N·σ) is already 1/N: one division by N too many",
                 "σ": "the prefactor divides by σ (multiply by inv_std)",
                 "1/σ": "the prefactor divides by σ once, not twice",
                 "1/σ²": "the prefactor divides by σ once, not by the variance"})
