"""Diagnose a wrong output from its properties, so a mistake nobody listed still gets a hint.

A catalogued Mistake names a wrong answer only when the answer equals its planted version. For
any other wrong output, each detector below tries the explanations it knows (a named factor, an
offset of ±β, statistics taken another way, one path of a gradient off, ...) and returns every
one that reproduces the output of this case: a `Cause` with a case-independent id and the words.
Nothing here picks among them. `base.evaluate_all` keeps a cause only when the same id explains
the output in every case it failed and no other id does; otherwise the check prints the
`Reading.located` sentence, which says which outputs and which properties are off and names no
cause. Diagnoses only ever word the message; whether a case passes is decided before.

A task describes its outputs with `views` (one view or a tuple per output name) and names its
inputs' quantities with `symbols`; the words come from the exercise. To extend: write one
detector `(ctx) -> [Cause, ...]`, add it to DETECTORS, and test it in tests/test_diagnose.py.
"""

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from course.batchnorm import DEFAULT_EPS, DEFAULT_MOMENTUM

# ---------------------------------------------------------------------------------------------
# Tolerances, each in one place with the reason for its size.

# A candidate reproduces an output when every entry is within FIT of the output's largest entry
# (relative). Float64 rounding over the few operations of these layers stays below 1e-12 of it,
# while every slip the detectors tell apart moves some entry of the task's cases by more than
# 1e-4 of it: 1e-6 sits between the two with two decades of margin on each side.
FIT = 1e-6
# A ratio of two fitted coefficients (a term of a gradient, a per-feature r) equals a named
# factor within FACTOR: each coefficient carries the fit's error, about 1e-9 on these cases, and
# divided by a small reference term it grows; the closest pair of named factors (N/(N−1) at the
# largest N of any case, 33/32) differs by 3e-2, far above.
FACTOR = 1e-4
# Below SMALL of an output's largest entry a value is printed as "≈ 0": rounding (1e-15) and ε's
# effect on scale invariance (ε/var, at most 1e-3 on the cases where "≈ 0" is claimed) are below.
SMALL = 1e-3
# "Close but not within tolerance" is said (as a property, not a cause) below CLOSE relative error.
CLOSE = 1e-3
# A column of data is "far from zero" when |mean| > FAR × its std: a variance computed as
# E[x²] − E[x]² there loses about 2·log10(FAR) = 6 of float64's 16 digits, enough to show at the
# tasks' tolerances, while no case has a column in between (1 < |mean|/std < 1e3 elsewhere).
FAR = 1e3
# A one-pass variance in float64 on the cases' far columns (|mean|/std up to 1e7) is off by at
# most (|mean|/std)² × 1e-16 ≈ 1e-2 relative; a larger error there has another cause.
CANCEL_LIMIT = 0.1
# A column's variance is "comparable to ε" below NEAR_EPS × ε: ε then changes √(var + ε) by more
# than 1/(2·NEAR_EPS) = 5e-4 relative; the cases' other columns sit above 1e4 × ε.
NEAR_EPS = 1e3
# Rounding for printing keeps at most 8 decimals (np.round(out, 3), f"{v:.6f}", ...).
ROUNDED_DECIMALS = range(9)
# Digits printed for a value: at least SHOWN; more when needed to show two values differ.
SHOWN, MOST_DIGITS = 3, 12


# ---------------------------------------------------------------------------------------------
# What a detector returns, and what it reads.


@dataclass(frozen=True)
class Cause:
    """One explanation of a wrong output: `id` is the same in every case, `text` is the hint.
    A cause made of several slips lists them as `parts` (each a Cause), so that when two causes
    tie, the slips they share can still be named."""

    id: str
    text: str
    parts: tuple = ()

    @property
    def components(self):
        return self.parts or (self,)


def compound(key, parts):
    """One Cause of several slips: its id and words are its parts'."""
    return Cause("+".join(p.id for p in parts), f"`{key}`: " + "; ".join(p.text for p in parts),
                 tuple(parts))


@dataclass(frozen=True)
class Reading:
    """Everything the detectors found for one wrong output in one case."""

    causes: tuple = ()  # every Cause that reproduces the output in this case
    located: str = ""  # which properties are off, with no cause named


def _identity(a):
    return a


@dataclass(frozen=True)
class Normalised:
    """An output gamma * x_hat + beta, with x standardised per column of `rows` (each column is
    one group of statistics: a feature, a channel, an example)."""

    source: Callable  # inputs -> (x, gamma, beta), each broadcastable to the output's shape
    eps: Callable  # inputs -> eps
    rows: Callable = _identity  # output-shaped array -> (M, F)
    over: str = "per feature over the batch (axis=0)"  # where the statistics belong
    across: str = "per example (axis=1)"  # statistics along the other axis of `rows`
    stats: str = "batch"  # "batch": the batch's own statistics; "running": the buffers'
    group: str = "feature"  # what one column of `rows` is: feature, channel, example
    has_running: bool = True  # the layer keeps running statistics (batch norm, not layer norm)
    centred: bool = True  # False for RMSNorm: x divided by its root mean square, not centred
    running: Callable | None = None  # inputs -> (mean, var) the test mode should use, (F,)


@dataclass(frozen=True)
class Gradient:
    """A dx of a normalising layer written as a sum of named terms (each (M, F) in rows)."""

    terms: Callable  # inputs -> ({term: (M, F) array}, x_hat (M, F)); the terms sum to dx
    rows: Callable = _identity  # output-shaped array -> (M, F)
    names: dict = field(default_factory=dict)  # term -> words
    hints: dict = field(default_factory=dict)  # (term, factor label) -> what to look at
    scale_hints: dict = field(default_factory=dict)  # factor label of all of dx -> hint
    sums: str = "over the batch, per feature"  # what a column sum of `rows` is, in words
    group: str = "feature"
    invariant: bool = True  # Σ over a group of dx and of dx·x̂ vanish (up to ε) for this layer


@dataclass(frozen=True)
class Running:
    """A running statistic after the case's train steps: the old value moved towards each
    batch's statistic by a moving average."""

    start: Callable  # inputs -> the buffer before the first step, (F,)
    batches: Callable  # inputs -> list of (M, F) batches, one per train step
    keep: Callable  # inputs -> weight of the OLD value in the right update
    stat: str = "mean"  # "mean" or "var"
    unbiased: bool = False  # the right update feeds the unbiased (N − 1) variance


@dataclass(frozen=True)
class Renorm:
    """Batch Renormalization's train output gamma * (x_hat_B * r + d) + beta."""

    parts: Callable  # inputs -> {x, gamma, beta, eps, running_mean, running_var, r_max, d_max}


@dataclass(frozen=True)
class Regularised:
    """An output of a loss with an L2 term 0.5 * reg * Σ W² over `penalised` parameters."""

    params: Callable  # inputs -> (params dict, reg, N)
    penalised: Callable  # params dict -> names of the parameters the L2 term covers


@dataclass(frozen=True)
class Alternatives:
    """Named other ways to compute an output that a student may take (a count where a fraction
    belongs, ≥ where > belongs): each is a cause when it reproduces the output."""

    forms: Callable  # inputs -> {id: (value, hint)}


@dataclass(frozen=True)
class Overflow:
    """An output that overflows in a naive implementation on the cases `applies` marks."""

    applies: Callable  # inputs -> bool
    text: str


@dataclass(frozen=True)
class eps_of:  # noqa: N801 - used like a function: eps_of("bn_param")(inputs)
    """inputs -> the ε that the case's param dict inputs[key] states, or the course default;
    `key` also names the dict in hints (ln_param, rms_param, ...)."""

    key: str

    def __call__(self, inputs):
        return (inputs.get(self.key) or {}).get("eps", DEFAULT_EPS)


def read_eps_words(view):
    """How the student's code should read ε, in the words of the view's own inputs."""
    key = getattr(view.eps, "key", None)
    if key is None:
        return "use the eps argument the function is given"
    return f"read it from the param dict, e.g. {key}.get('eps', {_fmt(DEFAULT_EPS)})"


def term_names(mean, var, g="dout", direct="the N·dout term"):
    """Gradient.names in the closed form dx = γ/(N·σ)·(N·dout − Σdout − x̂·Σ(dout·x̂)): each sum
    term named by what it is and, in brackets, `mean` or `var` (where it comes from in this
    exercise); g is what the sums run over (dout, or dx̂ = dout·γ when γ varies inside a sum)."""
    return {"mean": f"the −Σ{g} term ({mean})", "var": f"the −x̂·Σ({g}·x̂) term ({var})",
            "direct": direct}


def bn_terms(x_hat, g, inv_std):
    """The three terms of a standardisation's dx in rows layout, from x̂, g = dout·γ and 1/σ."""
    return {"direct": g * inv_std,
            "mean": -inv_std * g.mean(axis=0) * np.ones_like(g),
            "var": -inv_std * x_hat * (g * x_hat).mean(axis=0)}, x_hat


@dataclass(frozen=True)
class Ctx:
    """One wrong output of one case, and what the detectors may read about it."""

    key: str
    got: np.ndarray
    want: np.ndarray
    expected: dict
    inputs: dict
    views: tuple
    symbols: dict
    rtol: float = FIT  # the task's tolerance: what "wrong" means for one entry
    atol: float = 0.0

    @property
    def N(self):
        return self.symbols.get("N")

    @property
    def count(self):
        return self.symbols.get("count", "N")

    def view(self, kind):
        return next((v for v in self.views if isinstance(v, kind)), None)


# ---------------------------------------------------------------------------------------------
# Numbers in words.


def _fmt(v, digits=SHOWN):
    return f"{v:.{digits}g}"


def _digits(a, b):
    """The fewest digits (at least SHOWN) at which every entry of a that differs from b's prints
    differently from it, so a message never reads "[1, 0.239] instead of [1, 0.239]"."""
    a, b = np.ravel(a), np.ravel(b)
    for digits in range(SHOWN, MOST_DIGITS + 1):
        if all(_fmt(x, digits) != _fmt(y, digits) for x, y in zip(a, b, strict=True) if x != y):
            return digits
    return MOST_DIGITS


def _vec(v, digits=SHOWN, n=4):
    v = np.ravel(v)
    body = ", ".join(_fmt(x, digits) for x in v[:n])
    return f"[{body}{', …' if v.size > n else ''}]"


def _pair(got, want, n=4):
    """'[a, …] instead of [b, …]' with enough digits to show each difference."""
    got, want = np.ravel(got), np.ravel(want)
    digits = _digits(got[:n], want[:n])
    return f"{_vec(got, digits, n)} instead of {_vec(want, digits, n)}"


def _scale(a):
    a = np.asarray(a, dtype=float)
    return max(float(np.max(np.abs(a))) if a.size else 0.0, 1e-300)


def near(a, b, rtol=FIT):
    """a ≈ b entry by entry, within rtol of the larger of the two arrays' largest entries."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(a - b) <= rtol * max(_scale(a), _scale(b))))


def scalar_factors(N, name="N"):
    """Named scale factors a slip typically leaves: (label, value); `name` is the exercise's
    symbol for the count (N, D, N·H·W)."""
    out = []
    if N and N > 1:
        n = name if len(name) == 1 else f"({name})"
        out += [(name, N), (f"1/{n}", 1 / N), (f"{n}/({name} − 1)", N / (N - 1)),
                (f"({name} − 1)/{n}", (N - 1) / N),
                (f"√({n}/({name} − 1))", np.sqrt(N / (N - 1))),
                (f"√(({name} − 1)/{n})", np.sqrt((N - 1) / N)),
                (f"{name} − 1", N - 1), (f"1/({name} − 1)", 1 / (N - 1))]
    out += [("2", 2.0), ("½", 0.5), ("−1", -1.0), ("100", 100.0), ("0", 0.0)]
    return out


def _generic(label, name):
    """The label with the exercise's count symbol replaced by N, to look up GENERIC words."""
    return label.replace(f"({name})", "N").replace(name, "N") if name != "N" else label


GENERIC_FACTOR_HINTS = {
    "N": "a sum where a mean belongs (or an extra factor N)",
    "1/N": "a mean where a sum belongs (or one division by N too many)",
    "N − 1": "a sum where a mean belongs, divided by N − 1",
    "1/(N − 1)": "a division by N − 1",
    "N/(N − 1)": "an N − 1 where N belongs (ddof=1); these statistics divide by N",
    "(N − 1)/N": "an N where N − 1 belongs",
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


def show_factor(label, value, N, name="N"):
    """'N = 4', '1/N = 0.25 (N = 4)', '2', 'γ per feature'."""
    if np.ndim(value) > 0:
        return f"{label} per feature"
    if label == name:
        return f"{name} = {N}"
    if name in label:
        return f"{label} = {_fmt(value)} ({name} = {N})"
    return label


def _factor_words(label, name, hints):
    words = hints.get(label) or GENERIC_FACTOR_HINTS.get(_generic(label, name), "")
    return words.replace("N", name) if name != "N" else words


def _vector_factors(symbols, shape):
    """Named per-feature factors (γ, 1/γ, σ, 1/σ, σ², 1/σ²) that broadcast to `shape`."""
    out = []
    for name in ("γ", "σ"):
        v = symbols.get(name)
        if v is None or np.any(np.asarray(v) == 0):
            continue
        v = np.asarray(v, dtype=float)
        try:
            if np.broadcast_shapes(v.shape, shape) != tuple(shape):
                continue
        except ValueError:
            continue
        if np.allclose(v, v.flat[0]):
            continue  # a constant is not a per-feature factor
        out += [(name, v), (f"1/{name}", 1 / v)]
        if name == "σ":
            out += [("σ²", v**2), ("1/σ²", 1 / v**2)]
    return out


def _factors_matching(ratio, N, name, symbols=None):
    """Every named factor a per-column ratio equals: a scalar in every column, or a per-column
    quantity (σ², γ, ...) of the case's symbols with one value per column."""
    found = [(label, k) for label, k in scalar_factors(N, name)
             if np.allclose(ratio, k, rtol=FACTOR, atol=FACTOR)]  # atol: the factor 0
    for label, v in _vector_factors(symbols or {}, np.shape(ratio)):
        if np.shape(v) == np.shape(ratio) and np.allclose(ratio, v, rtol=FACTOR):
            found.append((label, v))
    return found


# ---------------------------------------------------------------------------------------------
# Detectors: each returns every Cause that reproduces ctx.got in this case.


def detect_other_output(ctx):
    """The output holds what another output should be (dgamma ↔ dbeta, mean ↔ var)."""
    return [Cause(f"holds:{other}", f"`{ctx.key}` holds what `{other}` should be")
            for other, w in ctx.expected.items()
            if other != ctx.key and w.shape == ctx.got.shape and np.any(w) and near(ctx.got, w)]


def detect_complement(ctx):
    """A fraction counted the other way round: 1 − p."""
    w = ctx.want
    if w.ndim == 0 and 0 <= w <= 1 and near(ctx.got, 1 - w):
        return [Cause("complement", f"`{ctx.key}` is 1 − the expected value: the complement "
                                    "was counted")]
    return []


def detect_rounded(ctx):
    """The right values rounded (for printing?) to a number of decimals."""
    if np.all(np.isin(ctx.got, (0.0, 1.0))):
        return []  # a boolean (a comparison, of a mean say) is as plausible as rounding
    for decimals in ROUNDED_DECIMALS:
        if decimals == 0 and ctx.got.size == 1:
            continue  # one bare whole number: a count or a comparison as much as rounding
        r = np.round(ctx.want, decimals)
        if not np.array_equal(r, ctx.want) and np.array_equal(ctx.got, r):
            return [Cause("rounded", f"`{ctx.key}` is the expected values rounded to {decimals} "
                                     "decimals: return them unrounded (round only when "
                                     "printing)")]
    return []


def detect_float32(ctx):
    """Every value a float32 although the right ones are not: single precision inside."""
    flat, wflat = np.ravel(ctx.got), np.ravel(ctx.want)
    if flat.size < 4 or np.all(flat == np.round(flat)):
        return []
    if np.all(flat.astype(np.float32) == flat) and not np.all(wflat.astype(np.float32) == wflat):
        return [Cause("float32", f"`{ctx.key}` has float32 precision (every value is a float32): "
                                 "compute in float64; float32 keeps only about 7 digits")]
    return []


def _beta_symbol(ctx):
    beta = ctx.symbols.get("β")
    if beta is None or not np.any(beta):
        return None
    try:
        return np.broadcast_to(beta, ctx.want.shape)
    except ValueError:
        return None


def detect_offset(ctx):
    """A shift by a multiple of β."""
    b = _beta_symbol(ctx)
    if b is None or np.ndim(ctx.symbols["β"]) > ctx.want.ndim:
        return []
    out = []
    for k, text in ((-1, "β is missing: add beta"), (-2, "β is subtracted (− beta): add it"),
                    (1, "β is added twice")):
        if near(ctx.got, ctx.want + k * b):
            sign = "−" if k < 0 else "+"
            out.append(Cause(f"offset:{k}β", f"`{ctx.key}` equals the expected values {sign} "
                                             f"{abs(k) if abs(k) > 1 else ''}β: {text}"))
    return out


def _scale_causes(ctx, got, want, where, idp, hints):
    if not np.any(want):
        return []
    out = []
    name = ctx.count
    for label, k in scalar_factors(ctx.N, name):
        if label != "0" and near(got, k * want):
            if label == "−1":
                out.append(Cause(f"{idp}:−1", f"{where} has the opposite sign of the expected "
                                              "values: a sign is flipped"))
                continue
            words = _factor_words(label, name, hints)
            out.append(Cause(f"{idp}:{_generic(label, name)}",
                             f"{where} is the expected values times "
                             f"{show_factor(label, k, ctx.N, name)}" + (f": {words}" if words
                                                                       else "")))
    K = ctx.symbols.get("K")  # devices, for a sum (or mean) over them in the wrong place
    for label, k in ((("K", K), ("1/K", 1 / K)) if K and K > 1 else ()):
        if near(got, k * want):
            words = {"K": "added once per device where the all-reduced value is used once",
                     "1/K": "averaged over the devices where the all-reduce sums"}[label]
            out.append(Cause(f"{idp}:{label}", f"{where} is the expected values times {label} "
                                               f"(K = {K} devices): {words}"))
    for label, v in _vector_factors(ctx.symbols, want.shape):
        if near(got, v * want):
            words = _factor_words(label, name, hints)
            out.append(Cause(f"{idp}:{label}", f"{where} is the expected values times {label} "
                                               f"per {_group(ctx)}" + (f": {words}" if words
                                                                       else "")))
    return out


def _group(ctx):
    for v in ctx.views:
        if isinstance(v, (Normalised, Gradient)):
            return v.group
    return "feature"


def detect_scale(ctx):
    """The whole output times a named factor (N, 1/N, 2, −1, γ, σ, ...)."""
    grad = ctx.view(Gradient)
    return _scale_causes(ctx, ctx.got, ctx.want, f"`{ctx.key}`", "scale",
                         grad.scale_hints if grad else {})


def detect_scale_without_beta(ctx):
    """out − β times a named factor (for an output that adds β last)."""
    b = _beta_symbol(ctx)
    if b is None:
        return []
    causes = _scale_causes(ctx, ctx.got - b, ctx.want - b, f"`{ctx.key}` − β", "scale-β", {})
    return [c for c in causes if c.id != "scale-β:−1"]


def detect_layout(ctx):
    """The right numbers in another axis order: an array put back with the wrong reshape."""
    w, g = ctx.want, ctx.got
    if w.ndim < 2 or g.size != w.size or near(g, w):
        return []
    for perm in itertools.permutations(range(w.ndim)):
        if perm == tuple(range(w.ndim)):
            continue
        if near(g, w.transpose(perm).reshape(g.shape)):
            return [Cause("layout", f"`{ctx.key}` holds the right values in the wrong places: "
                                    "an array was put back in the wrong axis order (a reshape "
                                    "without the transpose that undoes the one before)")]
    return []


# --- Normalised: the output as statistics taken one way or another -----------------------------

_AXES = {"group": 0, "across": 1, "whole": None}


def _scales(xc, axis, eps, M):
    """Named ways to compute the spread of centred xc along an axis: (name, s)."""
    with np.errstate(all="ignore"):
        v = np.mean(xc**2, axis=axis, keepdims=True)
        v1 = v * M / (M - 1) if M > 1 else np.full_like(v, np.nan)
        return [("sqrt(v+eps)", np.sqrt(v + eps)), ("sqrt(v1+eps)", np.sqrt(v1 + eps)),
                ("sqrt(v)+eps", np.sqrt(v) + eps), ("sqrt(v)", np.sqrt(v)),
                ("sqrt(v)+sqrt(eps)", np.sqrt(v) + np.sqrt(eps)), ("v+eps", v + eps),
                ("sqrt(v1)+eps", np.sqrt(v1) + eps), ("sqrt(v1)", np.sqrt(v1)), ("1", 1.0),
                ("sqrt(sum+eps)", np.sqrt(v * M + eps))]


# The slips a spread can carry (each one component of a cause) and the spreads they make.
_SLIP_WORDS = {
    "ddof1": "the variance was divided by {n} − 1 (ddof=1): normalise with the biased variance, "
             "dividing by {n}",
    "eps_outside": "ε was added outside the square root (std + eps): use sqrt(var + eps)",
    "eps_missing": "ε is missing: divide by sqrt(var + eps)",
    "sqrt_eps": "ε was given its own square root (sqrt(var) + sqrt(eps)): use sqrt(var + eps), "
                "one root of the sum",
    "by_var": "x − μ was divided by the variance, not by its square root: divide by "
              "sqrt(var + eps)",
    "not_divided": "x − μ was never divided by sqrt(var + eps)",
    "sum": "the spread was a sum of squares where the mean square belongs: divide by {n} inside "
           "the root",
}
_SCALE_SLIPS = {"sqrt(v+eps)": (), "sqrt(v1+eps)": ("ddof1",), "sqrt(v)+eps": ("eps_outside",),
                "sqrt(v)": ("eps_missing",), "sqrt(v)+sqrt(eps)": ("sqrt_eps",),
                "v+eps": ("by_var",), "sqrt(v1)+eps": ("ddof1", "eps_outside"),
                "sqrt(v1)": ("ddof1", "eps_missing"), "1": ("not_divided",),
                "sqrt(sum+eps)": ("sum",)}


def _rms_words(words):
    return words.replace("var + eps", "mean(x²) + eps").replace("sqrt(var)", "sqrt(mean(x²))") \
        .replace("variance", "mean square") \
        .replace("x − μ", "x").replace("standard deviation", "root mean square")


def _stat_candidates(view, xr, eps):
    """Named standardisations of xr (M, F): {(centre axis or "none", scale axis, spread kind,
    scale): z}. The spread is a variance about the mean along its own axis ("var", np.var) or
    a mean square of x itself ("ms"), whatever was subtracted above it."""
    out = {}
    for scale_axis_name, scale_axis in _AXES.items():
        count = xr.size if scale_axis is None else xr.shape[scale_axis]
        for kind in ("var", "ms"):
            xc = xr - xr.mean(axis=scale_axis, keepdims=True) if kind == "var" else xr
            for scale_name, s in _scales(xc, scale_axis, eps, count):
                for axis_name, axis in (*_AXES.items(), ("none", "none")):
                    top = xr if axis == "none" else xr - xr.mean(axis=axis, keepdims=True)
                    with np.errstate(all="ignore"):
                        out[axis_name, scale_axis_name, kind, scale_name] = top / s
    return out


def _stat_parts(view, axis_name, scale_axis_name, kind, scale_name, n):
    """The slips of statistics taken (centre, scale axis, spread kind, scale) instead of the
    right way."""
    parts = []
    where = {"across": f"taken {view.across}", "whole": "taken over the whole array (no axis)"}
    if axis_name == scale_axis_name and axis_name != "group":
        parts.append(Cause(f"axes:{axis_name}", f"the mean and the variance were "
                                                f"{where[axis_name]}: take them {view.over}"))
    else:
        if axis_name not in ("group", "none"):
            parts.append(Cause(f"centre:{axis_name}", f"the mean was {where[axis_name]}: take "
                                                      f"it {view.over}"))
        if scale_axis_name != "group":
            parts.append(Cause(f"spread:{scale_axis_name}", f"the spread was "
                                                            f"{where[scale_axis_name]}: take it "
                                                            f"{view.over}"))
    if view.centred and axis_name == "none":
        parts.append(Cause("not_centred", "the mean was not subtracted: x_hat = (x − μ) / "
                                          "sqrt(var + eps)"))
    if not view.centred and axis_name != "none":
        parts.append(Cause("centred", "the mean was subtracted, which RMSNorm does not do "
                                      "(that is layer norm)"))
    if view.centred and kind == "ms":
        parts.append(Cause("mean_square", "the spread is the mean of x², not the variance: "
                                          "subtract the mean before squaring"))
    if not view.centred and kind == "var":
        parts.append(Cause("variance", "the spread is the variance of x: RMSNorm divides by "
                                       "the root of the mean of x² itself"))
    for slip in _SCALE_SLIPS[scale_name]:
        words = _SLIP_WORDS[slip].format(n=n)
        parts.append(Cause(slip, _rms_words(words) if not view.centred else words))
    return parts


def _running_candidates(view, inputs, xr, eps):
    rm, rv = view.running(inputs)
    bm, bv = xr.mean(axis=0), xr.var(axis=0)
    with np.errstate(all="ignore"):
        return {
            "batch_stats": ((xr - bm) / np.sqrt(bv + eps),
                            "test mode normalised with the batch's own statistics: use the "
                            "running statistics (running_mean, running_var), so an example's "
                            "output does not depend on the rest of the batch"),
            "batch_mean": ((xr - bm) / np.sqrt(rv + eps),
                           "test mode subtracted the batch's own mean: subtract running_mean"),
            "batch_var": ((xr - rm) / np.sqrt(bv + eps),
                          "test mode divided by the batch's own spread: use running_var"),
            "no_eps": ((xr - rm) / np.sqrt(rv),
                       "ε is missing in test mode: divide by sqrt(running_var + eps)"),
            "eps_outside": ((xr - rm) / (np.sqrt(rv) + eps),
                            "ε was added outside the square root in test mode: use "
                            "sqrt(running_var + eps)"),
            "by_var": ((xr - rm) / (rv + eps), "test mode divided by running_var, not by its "
                                               "square root"),
            "std_as_var": ((xr - rm) / np.sqrt(np.sqrt(rv) + eps),
                           "running_var was treated as a standard deviation"),
        }


def detect_normalised(ctx):
    """Statistics taken over another axis, another spread, γ and β misapplied."""
    view = ctx.view(Normalised)
    if view is None:
        return []
    x, gamma, beta = view.source(ctx.inputs)
    shape = ctx.want.shape
    G = view.rows(np.broadcast_to(gamma, shape))  # (M, F)
    B = view.rows(np.broadcast_to(beta, shape))  # (M, F)
    xr = view.rows(np.broadcast_to(x, shape)).astype(float)  # (M, F)
    got = view.rows(ctx.got)  # (M, F)
    z0 = view.rows(ctx.want)  # (M, F) γ x̂ + β; x̂ below
    eps = view.eps(ctx.inputs)
    out = []
    with np.errstate(all="ignore"):
        x_hat = (z0 - B) / G if np.all(G != 0) else None
    if x_hat is not None:
        forms = {
            "affine:swapped": (B * x_hat + G, "γ and β are swapped: out = gamma * x_hat + beta "
                                              "(scale first, then shift)"),
            "affine:divided": (x_hat / G + B, "x_hat was divided by γ: multiply, out = gamma * "
                                              "x_hat + beta"),
            "affine:gamma_missing": (x_hat + B, "γ is missing: out = gamma * x_hat + beta"),
            "affine:none": (x_hat, "γ and β are missing: out = gamma * x_hat + beta"),
            "affine:beta_inside": (G * (x_hat + B), "β was added before scaling, gamma * "
                                                    "(x_hat + beta): add it after, out = gamma "
                                                    "* x_hat + beta"),
            "affine:undone": (np.sign(G) * x_hat, "γ and β do not show in the output: "
                                                  "standardise first, then scale and shift"),
        }
        for cid, (cand, text) in forms.items():
            if near(got, cand):
                out.append(Cause(cid, f"`{ctx.key}`: {text}"))
    if view.stats == "running" and view.running is not None:
        for name, (z, text) in _running_candidates(view, ctx.inputs, xr, eps).items():
            if near(got, G * z + B):
                out.append(Cause(f"running:{name}", f"`{ctx.key}`: {text}"))
        return out
    if view.stats != "batch":
        return out
    if view.running is not None:
        rm, rv = view.running(ctx.inputs)
        if near(got, G * (xr - rm) / np.sqrt(rv + eps) + B):
            out.append(Cause("train:running", f"`{ctx.key}`: train mode normalised with the "
                                              "running statistics: in train mode use the "
                                              "batch's own mean and variance"))
    other = _eps_refit(view, xr, got, G, B, eps)
    if other is not None:  # the right formula with another ε: its value, not its place
        out.append(_eps_value_cause(ctx.key, view, other, eps))
    n = ctx.count
    for form, z in _stat_candidates(view, xr, eps).items():
        right = ("group" if view.centred else "none", "group",
                 "var" if view.centred else "ms", "sqrt(v+eps)")
        if form == right:
            continue
        if near(got, G * z + B):
            out.append(compound(ctx.key, _stat_parts(view, *form, n)))
    return out


def _eps_refit(view, xr, got, G, B, eps):
    """The ε (≠ the case's) with which the right standardisation reproduces got, or None:
    solved from the column whose variance is smallest (where ε weighs most), then checked on
    every entry."""
    if np.any(G == 0):
        return None
    with np.errstate(all="ignore"):
        top = xr - xr.mean(axis=0) if view.centred else xr  # (M, F)
        v = np.mean(top**2, axis=0)  # (F,)
        z = (got - B) / G
        j = int(np.argmin(v))
        mask = np.abs(z[:, j]) > 0
        if not np.any(mask):
            return None
        e = float(np.median((top[mask, j] / z[mask, j]) ** 2) - v[j])
        if not np.isfinite(e) or e <= 0 or np.isclose(e, eps, rtol=1e-3, atol=0):
            return None
        if near(got, G * top / np.sqrt(v) + B):
            return None  # no ε at all fits as well: that is ε missing, not another value
        for cand in (DEFAULT_EPS, eps**2, float(f"{e:.2g}"), e):  # a round value if one fits
            if near(got, G * top / np.sqrt(v + cand) + B):
                return cand
    return None


def _eps_value_cause(key, view, other, eps):
    """ε had another value than the case states: the default, its square, or a number."""
    if np.isclose(other, DEFAULT_EPS, rtol=1e-6, atol=0):
        return Cause("eps_default", f"`{key}`: ε was {_fmt(DEFAULT_EPS)}, the default, although "
                                    f"the case states {_fmt(eps)}: {read_eps_words(view)}")
    what = "ε²" if np.isclose(other, eps**2, rtol=1e-6, atol=0) else _fmt(other)
    return Cause("eps_value", f"`{key}`: ε's value differs: the output matches ε = {what} "
                              f"where the case states {_fmt(eps)} ({read_eps_words(view)}); "
                              "its place, sqrt(var + eps), is right")


def _located_normalised(ctx, view):
    """Which statistics of (out − β)/γ are off, per group; no cause."""
    x, gamma, beta = view.source(ctx.inputs)
    shape = ctx.want.shape
    G = view.rows(np.broadcast_to(gamma, shape))
    B = view.rows(np.broadcast_to(beta, shape))
    if np.any(G == 0):
        return ""
    z, z0 = (view.rows(ctx.got) - B) / G, (view.rows(ctx.want) - B) / G  # (M, F)
    what = (f"(out − β)/γ of `{ctx.key}`" if np.any(np.asarray(beta)) or
            np.any(np.asarray(gamma) != 1) else f"`{ctx.key}`")
    parts = []
    if view.centred:
        m, m0 = z.mean(axis=0), z0.mean(axis=0)
        if not near(m, m0, rtol=FIT) and np.max(np.abs(m - m0)) > FIT * _scale(z0):
            parts.append(f"its mean per {view.group} is {_pair(m, m0)}")
        s, s0 = z.std(axis=0), z0.std(axis=0)
        label = "std"
    else:
        s, s0 = np.sqrt((z**2).mean(axis=0)), np.sqrt((z0**2).mean(axis=0))
        label = "root mean square"
    if not near(s, s0, rtol=FIT):
        parts.append(f"its {label} per {view.group} is {_pair(s, s0)}")
    flipped = [j for j in range(z.shape[1])
               if np.any(z0[:, j]) and near(z[:, j], -z0[:, j]) and not near(z[:, j], z0[:, j])]
    if flipped:
        parts.append(f"it has the opposite sign in {view.group}s {flipped[:6]} and is right in "
                     "the others" if len(flipped) < z.shape[1] else "its sign is flipped")
    if not parts:
        return ""
    where = _wrong_axis_words(view, z)
    return f"{what}: " + "; ".join(parts) + (f" ({where})" if where else "")


def _standardised(z, axis, centred):
    """z has mean 0 (if centred) and unit spread along `axis`, each line (within a loose 1e-3:
    ε keeps the spread a little below 1)."""
    with np.errstate(all="ignore"):
        spread = z.std(axis=axis) if centred else np.sqrt((z**2).mean(axis=axis))
        ok = np.allclose(spread, 1.0, rtol=0, atol=1e-3)
        return ok and (not centred or np.allclose(z.mean(axis=axis), 0.0, atol=1e-6))


def _wrong_axis_words(view, z):
    """Where the statistics belong, said only when the output shows them taken elsewhere: in
    train mode standardised along the other axis, in test mode standardised per group by the
    batch (where the running statistics belong); otherwise nothing, so no reminder reads like
    a diagnosis of a slip the student did not make."""
    if z.shape[0] < 2 or z.shape[1] < 2:
        return ""
    if view.stats == "batch" and _standardised(z, 1, view.centred) \
            and not _standardised(z, 0, view.centred):
        return f"it is standardised {view.across}: statistics belong {view.over}"
    if view.stats == "running" and _standardised(z, 0, view.centred):
        return "it is standardised with the batch's own statistics: test mode uses " \
               "running_mean and running_var"
    return ""


# --- Gradient: which term of dx is off -------------------------------------------------------


def _term_fit(ctx, view):
    """Per column, the coefficients c_t with got − want = Σ c_t·term_t; None if that does not
    reproduce the error (or the terms are not independent on this case)."""
    terms, _ = view.terms(ctx.inputs)
    d, d0 = view.rows(ctx.got), view.rows(ctx.want)  # (M, F)
    M = d.shape[0]
    names = [t for t in terms if M > len(terms) or t != "direct"]
    if M <= len(names):
        return None
    r = d - d0
    coeffs = []
    for j in range(d.shape[1]):
        A = np.stack([terms[t][:, j] for t in names], axis=1)  # (M, T)
        if np.linalg.matrix_rank(A) < len(names):
            return None
        sol, *_ = np.linalg.lstsq(A, r[:, j], rcond=None)
        if np.max(np.abs(A @ sol - r[:, j])) > FIT * _scale(d0):
            return None
        coeffs.append(sol)
    coeffs = np.array(coeffs)  # (F, T)
    out = {}
    for i, t in enumerate(names):
        keep = np.max(np.abs(terms[t]), axis=0) > FIT * _scale(d0)  # (F,) where the term shows
        if np.any(keep):
            out[t] = 1 + coeffs[keep, i]  # ratio to what it should be
    return out


def _term_state(view, term, label, k, N, name):
    if label == "0":
        state = "is missing"
    elif label == "−1":
        state = "has the wrong sign"
    else:
        state = f"is {show_factor(label, k, N, name)} times what it should be"
    hint = view.hints.get((term, _generic(label, name)), "") or (
        GENERIC_FACTOR_HINTS.get(label, "") if np.ndim(k) else "")
    return f"{view.names.get(term, term)} {state}" + (f": {hint}" if hint else "")


def detect_gradient_terms(ctx):
    """One or more terms of dx off by named factors (missing, sign, ½, N, ...)."""
    view = ctx.view(Gradient)
    if view is None:
        return []
    ratios = _term_fit(ctx, view)
    if not ratios:
        return []
    off = {t: r for t, r in ratios.items() if not np.allclose(r, 1.0, rtol=FACTOR, atol=FACTOR)}
    if not off:
        return []
    found_all = [_factors_matching(r, ctx.N, ctx.count) for r in ratios.values()]
    # per-column factors only where a term shows in every column (so ratio has F entries)
    full = {t: np.size(r) == view.rows(ctx.want).shape[1] for t, r in ratios.items()}
    if "direct" in ratios and len(off) == len(ratios) and set.intersection(
            *[{lb for lb, _ in f} for f in found_all]):
        return []  # every term off by one factor: all of dx is, which detect_scale says
    options = []
    for t, r in off.items():
        found = _factors_matching(r, ctx.N, ctx.count, ctx.symbols if full[t] else None)
        if not found:
            return []
        options.append([(t, label, k) for label, k in found])
    out = []
    for combo in itertools.product(*options):
        cid = "terms:" + ",".join(f"{t}×{_generic(label, ctx.count)}" for t, label, _ in combo)
        text = "; ".join(_term_state(view, t, label, k, ctx.N, ctx.count)
                         for t, label, k in combo)
        out.append(Cause(cid, f"`{ctx.key}`: {text}"))
    return out


def _located_gradient(ctx, view):
    """Which terms (when they fit) or which sums of dx are off; no cause."""
    ratios = _term_fit(ctx, view)
    if ratios:
        off = [(t, r) for t, r in ratios.items()
               if not np.allclose(r, 1.0, rtol=FACTOR, atol=FACTOR)]
        every = np.concatenate([np.ravel(r) for r in ratios.values()])
        if len(off) == len(ratios) == 3 and np.allclose(every, every[0], rtol=FACTOR):
            return f"`{ctx.key}` is {_fmt(float(every[0]))} times the expected values"
        if off:
            return f"`{ctx.key}`: " + "; ".join(
                f"{view.names.get(t, t)} is {_vec(r)} times what it should be per {view.group}"
                for t, r in off)
    _, x_hat = view.terms(ctx.inputs)
    d, d0 = view.rows(ctx.got), view.rows(ctx.want)
    scale = _scale(d0) * d0.shape[0]
    parts = []
    for label, s, s0 in ((f"Σ `{ctx.key}`", d.sum(axis=0), d0.sum(axis=0)),
                         (f"Σ `{ctx.key}`·x̂", (d * x_hat).sum(axis=0),
                          (d0 * x_hat).sum(axis=0))):
        if np.max(np.abs(s - s0)) > FIT * scale:
            zero = (" (≈ 0)" if view.invariant and np.max(np.abs(s0)) <= SMALL * scale
                    and np.max(np.abs(s)) > SMALL * scale else "")
            parts.append(f"{label} {view.sums} is {_pair(s, s0)}{zero}")
    return "; ".join(parts)


# --- Running statistics: the moving average ------------------------------------------------------

def _ema(view, inputs, keep, feed):
    value = np.asarray(view.start(inputs), dtype=float)
    for xb in view.batches(inputs):
        value = keep * value + (1 - keep) * feed(xb)
    return value


def detect_running(ctx):
    """The moving average with the momentum reversed, not updated, fed another statistic."""
    view = ctx.view(Running)
    if view is None or not view.batches(ctx.inputs):
        return []
    m = view.keep(ctx.inputs)

    def stat(unbiased):
        def feed(xb):
            if view.stat == "mean":
                return xb.mean(axis=0)
            return xb.var(axis=0, ddof=1 if unbiased else 0)
        return feed

    feeds = {"right": stat(view.unbiased)}
    if view.stat == "var":
        wrong = "biased" if view.unbiased else "unbiased"
        feeds[wrong] = stat(not view.unbiased)
        feeds["std"] = lambda xb: np.sqrt(stat(view.unbiased)(xb))
    else:
        feeds["var"] = lambda xb: xb.var(axis=0)
    keeps = {"right": m, "reversed": 1 - m, "replaced": 0.0}
    if not view.unbiased and not np.isclose(m, DEFAULT_MOMENTUM):  # the case states another
        keeps["default"] = DEFAULT_MOMENTUM
    words = {"reversed": "the momentum convention is reversed: the right update keeps "
                         f"{_fmt(m)} of the OLD value, running = {_fmt(m)} * running + "
                         f"{_fmt(1 - m)} * batch statistic",
             "replaced": "the buffer was replaced by the batch statistic instead of moved "
                         "towards it by the moving average",
             "biased": "the batch variance fed to the average is the biased one (divide by "
                       "N); this update feeds the unbiased variance (ddof=1)",
             "unbiased": "the batch variance fed to the average divides by N − 1 (ddof=1); "
                         "this course averages the biased variance it normalises with",
             "std": "the standard deviation was averaged where the variance belongs",
             "default": f"the momentum was {_fmt(DEFAULT_MOMENTUM)}, the default, although "
                        f"bn_param states {_fmt(m)}: read it with bn_param.get('momentum', "
                        f"{_fmt(DEFAULT_MOMENTUM)})",
             "var": "the variance was averaged where the mean belongs"}
    out = []
    if near(ctx.got, view.start(ctx.inputs)):
        out.append(Cause("running:not_updated", f"`{ctx.key}` still holds its old value: "
                                                "train mode must update (and store) it"))
    for (kname, k), (fname, feed) in itertools.product(keeps.items(), feeds.items()):
        if (kname, fname) == ("right", "right"):
            continue
        if near(ctx.got, _ema(view, ctx.inputs, k, feed)):
            text = "; ".join(words[w] for w in (kname, fname) if w != "right")
            out.append(Cause(f"running:{kname}:{fname}", f"`{ctx.key}`: {text}"))
    return out


# --- Batch Renormalization: r and d ------------------------------------------------------------

def _renorm_fit(ctx, view):
    """(r, d) per feature with (out − β)/γ = x̂_B·r + d, and the parts; None if not that form."""
    p = view.parts(ctx.inputs)
    x, gamma, beta, eps = p["x"], p["gamma"], p["beta"], p["eps"]
    if np.any(gamma == 0):
        return None
    z = (ctx.got - beta) / gamma  # (N, D)
    x_b = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)  # (N, D)
    r, d = [], []
    for j in range(x.shape[1]):
        A = np.stack([x_b[:, j], np.ones(len(x))], axis=1)
        sol, *_ = np.linalg.lstsq(A, z[:, j], rcond=None)
        if np.max(np.abs(A @ sol - z[:, j])) > FIT * _scale(z):
            return None
        r.append(sol[0])
        d.append(sol[1])
    return np.array(r), np.array(d), p


def _renorm_options(p):
    x, eps = p["x"], p["eps"]
    mu, var = x.mean(axis=0), x.var(axis=0)
    rm, rv, r_max, d_max = p["running_mean"], p["running_var"], p["r_max"], p["d_max"]
    sb, sr = np.sqrt(var + eps), np.sqrt(rv + eps)
    N = len(x)
    sb1 = np.sqrt(var * N / (N - 1) + eps)
    rr, dr = sb / sr, (mu - rm) / sr
    m = p.get("momentum")
    if m is not None:  # r and d from the buffers after this batch's update
        rm_u, rv_u = m * rm + (1 - m) * mu, m * rv + (1 - m) * var
        sr_u = np.sqrt(rv_u + eps)
    r_opts = {"right": np.clip(rr, 1 / r_max, r_max),
              "unclipped": rr, "inverted": np.clip(1 / rr, 1 / r_max, r_max),
              "from_zero": np.clip(rr, 0, r_max), "missing": np.ones_like(rr),
              "no_eps": np.clip(sb / np.sqrt(rv), 1 / r_max, r_max),
              "ddof1": np.clip(sb1 / sr, 1 / r_max, r_max) * sb / sb1}
    if m is not None:
        r_opts["updated"] = np.clip(sb / sr_u, 1 / r_max, r_max)
    d_opts = {"right": np.clip(dr, -d_max, d_max), "unclipped": dr,
              "sign": np.clip(-dr, -d_max, d_max), "not_scaled": np.clip(mu - rm, -d_max, d_max),
              "missing": np.zeros_like(dr), "batch_sigma": np.clip((mu - rm) / sb, -d_max, d_max),
              "no_eps": np.clip((mu - rm) / np.sqrt(rv), -d_max, d_max)}
    if m is not None:
        d_opts["updated"] = np.clip((mu - rm_u) / sr_u, -d_max, d_max)
    return r_opts, d_opts


_R_WORDS = {"unclipped": "r was not clipped: r = clip(σ_B/σ, 1/r_max, r_max)",
            "inverted": "r is upside down: r = σ_B/σ (batch over running)",
            "from_zero": "r was clipped to [0, r_max]: the lower limit is 1/r_max",
            "missing": "r is missing: x̂ = (x − μ_B)/σ_B · r + d",
            "no_eps": "σ = sqrt(running_var) lacks ε in r: use sqrt(running_var + eps)",
            "ddof1": "the batch variance divides by N − 1 (ddof=1): BN's biased variance "
                     "(divide by N) goes into σ_B",
            "updated": "r was computed from the running statistics after this batch's update: "
                       "compute r and d first, then update running_mean and running_var"}
_D_WORDS = {"unclipped": "d was not clipped: d = clip((μ_B − μ)/σ, −d_max, d_max)",
            "sign": "d has the wrong sign: d = (μ_B − μ)/σ, batch mean minus running mean",
            "not_scaled": "d was not divided by σ: d = (μ_B − μ)/σ with σ the running standard "
                          "deviation",
            "missing": "d is missing: x̂ = (x − μ_B)/σ_B · r + d",
            "batch_sigma": "d was divided by the batch's σ_B: d = (μ_B − μ)/σ uses the running σ",
            "no_eps": "σ = sqrt(running_var) lacks ε in d: use sqrt(running_var + eps)",
            "updated": "d was computed from the running statistics after this batch's update: "
                       "compute r and d first, then update running_mean and running_var"}


def detect_renorm(ctx):
    """r and d of Batch Renormalization computed another way."""
    view = ctx.view(Renorm)
    if view is None:
        return []
    p = view.parts(ctx.inputs)
    if not np.isclose(p["eps"], DEFAULT_EPS):  # the case states its own ε: was it read?
        x, mu, var = p["x"], p["x"].mean(axis=0), p["x"].var(axis=0)
        r0, d0 = (o["right"] for o in _renorm_options(dict(p, eps=DEFAULT_EPS)))
        z = (x - mu) / np.sqrt(var + DEFAULT_EPS) * r0 + d0
        if near(ctx.got, p["gamma"] * z + p["beta"]):
            return [Cause("eps_default", f"`{ctx.key}`: ε was {_fmt(DEFAULT_EPS)}, the default, "
                                         f"although the case states {_fmt(p['eps'])}: read it "
                                         f"from the param dict, e.g. bn_param.get('eps', "
                                         f"{_fmt(DEFAULT_EPS)})")]
    fit = _renorm_fit(ctx, view)
    if fit is None:
        return []
    r, d, p = fit
    r_opts, d_opts = _renorm_options(p)
    out = []
    for rn, dn in itertools.product(_matching(r, r_opts), _matching(d, d_opts)):
        if (rn, dn) == ("right", "right"):
            continue
        words = ([_R_WORDS[rn]] if rn != "right" else []) + ([_D_WORDS[dn]] if dn != "right"
                                                             else [])
        if rn == dn == "updated":
            words = ["r and d were computed from the running statistics after this batch's "
                     "update: compute them first, then update running_mean and running_var"]
        out.append(Cause(f"renorm:r={rn}:d={dn}", f"`{ctx.key}`: " + "; ".join(words)))
    return out


def _matching(value, options):
    """The names of the options value equals; a wrong option that equals the right one on this
    case (r unclipped where no clipping happens) says nothing and is left out."""
    def same(a, b):
        return np.allclose(a, b, rtol=FACTOR, atol=FACTOR)
    return [n for n, v in options.items()
            if same(value, v) and (n == "right" or not same(v, options["right"]))]


def _located_renorm(ctx, view):
    fit = _renorm_fit(ctx, view)
    if fit is None:
        return ""
    r, d, p = fit
    r_opts, d_opts = _renorm_options(p)
    parts = []
    if not np.allclose(r, r_opts["right"], rtol=FACTOR, atol=FACTOR):
        parts.append(f"r (the slope of (out − β)/γ on (x − μ_B)/σ_B) is {_pair(r, r_opts['right'])}"
                     " per feature")
    if not np.allclose(d, d_opts["right"], rtol=FACTOR, atol=FACTOR):
        parts.append(f"d (its offset) is {_pair(d, d_opts['right'])} per feature")
    return f"`{ctx.key}`: " + "; ".join(parts) if parts else ""


# --- A loss with an L2 term: the regulariser and the averaging ---------------------------------

def _penalty(params, names):
    return 0.5 * sum(float(np.sum(params[k] ** 2)) for k in names)


def detect_regularised(ctx):
    """The L2 term missing, doubled, on the wrong parameters; the data term summed."""
    view = ctx.view(Regularised)
    if view is None:
        return []
    params, reg, N = view.params(ctx.inputs)
    pen = list(view.penalised(params))
    out = []
    if ctx.key == "loss":
        right = reg * _penalty(params, pen)
        data = float(ctx.want) - right
        weights = [k for k in pen]
        others = [k for k in params if k not in pen]
        cands = {"reg:missing": (data, "the loss lacks the L2 term 0.5·reg·ΣW²"),
                 "reg:no_half": (data + 2 * right, "the L2 term is reg·ΣW²: it is 0.5·reg·ΣW²"),
                 "data:N": (N * data + right, "the data loss is summed over the N examples: "
                                              "average it (divide by N)"),
                 "data:1/N": (data / N + right, "the data loss is divided by N twice")}
        for k in others:
            cands[f"reg:extra:{k.rstrip('0123456789')}"] = (
                ctx.want + reg * _penalty(params, [q for q in others
                                                   if q.rstrip("0123456789") ==
                                                   k.rstrip("0123456789")]),
                f"the L2 term also covers the {k.rstrip('0123456789')}'s: it covers the weight "
                "matrices W only")
        last = max(weights, key=lambda k: int(k[1:]))
        for k in weights:
            cands[f"reg:left_out:{'last' if k == last else k}"] = (
                ctx.want - reg * _penalty(params, [k]),
                f"the L2 term leaves out {k}: it covers every weight matrix W1 … W(L+1)")
        for cid, (value, text) in cands.items():
            if reg == 0 and cid.startswith("reg"):
                continue
            if near(ctx.got, value):
                out.append(Cause(cid, f"`loss`: {text}"))
        return out
    name = ctx.key[1:]  # dW1 -> W1
    if name not in params:
        return []
    P = params[name]
    in_pen = name in pen
    reg_part = reg * P if in_pen else 0 * P
    data = ctx.want - reg_part
    kind = name.rstrip("0123456789")
    cands = {"data:N": (N * data + reg_part, "the gradients are N times too large: the data "
                                             "loss is summed over the N examples, average it")}
    if reg:
        if in_pen:
            cands["reg:missing"] = (data, f"the L2 gradient reg·{name} is missing: "
                                          f"d(0.5·reg·Σ{kind}²)/d{kind} = reg·{kind}")
            cands["reg:doubled"] = (data + 2 * reg_part, f"the L2 gradient is 2·reg·{name}: the "
                                                         f"derivative of 0.5·reg·Σ{kind}² is "
                                                         f"reg·{kind}")
            cands["reg:halved"] = (data + 0.5 * reg_part, f"the L2 gradient is reg·{name}/2: "
                                                          f"the derivative of 0.5·reg·Σ{kind}² "
                                                          f"is reg·{kind}")
        elif np.any(P):
            cands[f"reg:extra:{kind}"] = (ctx.want + reg * P, f"`{ctx.key}` carries reg·{name}: "
                                                              "the L2 term covers the weight "
                                                              "matrices W only")
    for cid, (value, text) in cands.items():
        if near(ctx.got, value):
            key_id = cid if cid.startswith("data") else cid
            out.append(Cause(key_id, f"`{ctx.key}`: {text}" if not text.startswith("`")
                             else text))
    return out


def detect_alternatives(ctx):
    """The output equals one of the view's named other computations."""
    return [Cause(f"alt:{cid}", f"`{ctx.key}`: {text}")
            for view in ctx.views if isinstance(view, Alternatives)
            for cid, (value, text) in view.forms(ctx.inputs).items()
            if np.shape(value) == ctx.got.shape and near(ctx.got, value)
            and not near(value, ctx.want)]


def _columns(ctx):
    """(x (M, F), got (·, F), want (·, F), eps or None) lined up per column of data, or None:
    the data behind each column of the output, for detectors that ask where the error sits."""
    for view in ctx.views:
        if isinstance(view, Normalised):
            x = view.source(ctx.inputs)[0]
            shape = ctx.want.shape
            return (view.rows(np.broadcast_to(x, shape)), view.rows(ctx.got),
                    view.rows(ctx.want), view.eps(ctx.inputs))
        if isinstance(view, Running) and view.batches(ctx.inputs):
            x = np.concatenate(view.batches(ctx.inputs))
            return x, ctx.got[None], ctx.want[None], None  # a moving average has no ε
        if isinstance(view, Gradient) and "x" in ctx.inputs:
            x = view.rows(np.asarray(ctx.inputs["x"], dtype=float))
            if x.shape == view.rows(ctx.want).shape:
                return x, view.rows(ctx.got), view.rows(ctx.want), ctx.symbols.get("eps",
                                                                                    DEFAULT_EPS)
    return None


def _eps_value_fits(ctx):
    """The output is the right normalisation with another ε (its value is off, not its place)."""
    view = ctx.view(Normalised)
    if view is None or view.stats != "batch":
        return False
    x, gamma, beta = view.source(ctx.inputs)
    shape = ctx.want.shape
    G, B = (view.rows(np.broadcast_to(a, shape)) for a in (gamma, beta))
    xr = view.rows(np.broadcast_to(x, shape)).astype(float)
    return _eps_refit(view, xr, view.rows(ctx.got), G, B, view.eps(ctx.inputs)) is not None


def _column_errors(ctx, got, want):
    """Per column, the largest error in units of the task's tolerance (> 1: wrong there)."""
    with np.errstate(all="ignore"):
        return np.max(np.abs(got - want) / (ctx.atol + ctx.rtol * np.abs(want)), axis=0)  # (F,)


# Errors "sit" in some columns when each of those columns is off by CONCENTRATED times more
# (in units of the tolerance) than any other column: a slip of ε scales like ε/var, one of a
# cancelling variance like (|mean|/std)² × 1e-16, so either puts orders of magnitude between
# the columns it hits and the rest; a slip unrelated to the data's scale does not.
CONCENTRATED = 100.0


def detect_where_numerics_fail(ctx):
    """Wrong only in the columns far from zero (a cancelling one-pass variance), or only in
    those whose variance is comparable to ε (ε misplaced)."""
    cols = _columns(ctx)
    if cols is None:
        return []
    x, got, want, eps = cols
    err = _column_errors(ctx, got, want)  # (F,)
    wrong = err > 1
    if not np.any(wrong):
        return []
    mean, var = x.mean(axis=0), x.var(axis=0)

    def sits_in(cols):
        hit, rest = err[cols & wrong], err[~cols]
        return hit.size > 0 and (rest.size == 0 or np.min(hit) > CONCENTRATED * np.max(rest))
    out = []
    far = np.abs(mean) > FAR * np.sqrt(var)
    if sits_in(far) and np.max(np.abs(got - want)) <= CANCEL_LIMIT * _scale(want):
        out.append(Cause("cancellation", f"`{ctx.key}` is off mostly in the features far "
                                         "from zero (|mean| ≫ std): digits are lost there, as by a "
                                         "variance computed as E[x²] − E[x]²; subtract the mean "
                                         "before squaring, var = ((x − μ)²).mean(), in float64"))
    tiny = var < NEAR_EPS * (eps or 0.0)
    if eps is not None and sits_in(tiny) and not np.all(tiny) and not _eps_value_fits(ctx):
        out.append(Cause("eps_features", f"`{ctx.key}` is off mostly in the features whose "
                                         "variance is comparable to ε: ε is not where it "
                                         "belongs, σ = sqrt(var + eps) everywhere"
                                         + (" (the cache's inv_std already holds it)"
                                            if ctx.view(Gradient) else "")))
    return out


# ---------------------------------------------------------------------------------------------

# Cause ids of detectors that only relate the output to the expected one (a factor, an offset):
# when one of these and one specific cause both fit every case, they describe the same output.
RESTATEMENTS = ("scale:", "scale-β:", "offset:")

DETECTORS = (detect_other_output, detect_complement, detect_rounded, detect_float32,
             detect_offset, detect_scale, detect_scale_without_beta, detect_layout,
             detect_normalised, detect_gradient_terms, detect_running, detect_renorm,
             detect_regularised, detect_alternatives, detect_where_numerics_fail)


def _shape_sentence(key, got, want, inputs):
    """What a wrong shape is, in terms of the case's axes (a fact, no cause)."""
    g, w = got.shape, want.shape
    text = f"`{key}` has shape {g}, expected {w}"
    batches = {np.shape(v) for v in inputs.values() if np.ndim(v) == 2}  # (N, D) inputs
    if want.ndim == 0:
        return text + ": return a single number over all entries (no axis)"
    if len(w) == 1 and len(g) == 1 and (g[0], w[0]) in batches:
        return text + ": one value per example where one per feature belongs — reduce over " \
                      "the batch (axis=0)"
    if got.size == 1 and want.size > 1:
        return text + ": a single number where one per feature belongs"
    if len(w) == 1 and len(g) == 2 and g[1:] == w:
        return text + ": one value per entry where one per feature belongs — sum over the " \
                      "batch, axis=0"
    if len(w) == 2 and g == w[::-1]:
        return text + ": transposed"
    if got.size == want.size:
        return text + ": the right number of values in another shape"
    return text


def _nonfinite(ctx):
    what = "NaN" if np.any(np.isnan(ctx.got)) else "infinity"
    causes = tuple(Cause("overflow", f"`{ctx.key}` contains {what}: {v.text}")
                   for v in ctx.views if isinstance(v, Overflow) and v.applies(ctx.inputs))
    return Reading(causes, f"`{ctx.key}` contains {what} where the expected values are finite")


def _views(task, key):
    v = task.views.get(key, ())
    return v if isinstance(v, tuple) else (v,)


def explain_output(task, inputs, key, got, want, expected):
    """A Reading of one wrong output: every cause that fits this case, and the located words."""
    symbols = task.symbols(inputs) if task.symbols else {}
    views = _views(task, key)
    if got.shape != want.shape:
        text = _shape_sentence(key, got, want, inputs)
        return Reading((Cause("shape:" + text.split(": ", 1)[-1], text),), text)
    ctx = Ctx(key, got, want, expected, inputs, views, symbols, task.rtol, task.atol)
    if not np.all(np.isfinite(got)):
        return _nonfinite(ctx)
    causes = []
    for detect in DETECTORS:
        causes += detect(ctx)
    if any(c.id.split(":")[-1] in ("eps_default", "eps_value") for c in causes):
        # ε is there with another value: a cause saying it is missing would mislead
        causes = [c for c in causes if not any(m in q.id for q in c.components
                                               for m in ("eps_missing", "no_eps"))]
    seen, unique = set(), []
    for c in causes:
        if c.id not in seen:
            seen.add(c.id)
            unique.append(c)
    return Reading(tuple(unique), located(ctx))


def located(ctx):
    """Which properties of one wrong output are off, naming no cause."""
    parts = []
    for view in ctx.views:
        if isinstance(view, Normalised):
            parts.append(_located_normalised(ctx, view))
        elif isinstance(view, Gradient):
            parts.append(_located_gradient(ctx, view))
        elif isinstance(view, Renorm):
            parts.append(_located_renorm(ctx, view))
    parts = [p for p in parts if p]
    if parts:
        return "; ".join(parts)
    err = float(np.max(np.abs(ctx.got - ctx.want)))
    rel = err / _scale(ctx.want)
    if rel < CLOSE:
        return (f"`{ctx.key}` is close to the expected values but not within tolerance (max "
                f"error {rel:.1e} of its size)")
    if ctx.want.size > 1:
        worst = np.unravel_index(np.argmax(np.abs(ctx.got - ctx.want)), ctx.want.shape)
        return (f"`{ctx.key}` differs from the expected values (max abs error {err:.2e}, at "
                f"index {tuple(int(i) for i in worst)})")
    if ctx.want.ndim == 0:
        digits = _digits(ctx.got, ctx.want)
        return f"`{ctx.key}` is {_fmt(float(ctx.got), digits)} instead of " \
               f"{_fmt(float(ctx.want), digits)}"
    return f"`{ctx.key}` is {_pair(ctx.got, ctx.want)}"


def _join(names):
    names = [f"`{n}`" for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def right_and_wrong(names_right, names_wrong):
    """'`dgamma` and `dbeta` are right, `dx` is wrong' (empty when nothing is right)."""
    if not names_right or not names_wrong:
        return ""
    return (f"{_join(names_right)} {'is' if len(names_right) == 1 else 'are'} right, "
            f"{_join(names_wrong)} {'is' if len(names_wrong) == 1 else 'are'} wrong")


_BUFFERS = ("running_mean", "running_var")


def _case_shapes(inputs):
    """The (rows, columns) of every 2-D array among the case's inputs (in dicts and lists too)."""
    found, todo = set(), [inputs]
    while todo:
        v = todo.pop()
        if isinstance(v, dict):
            todo += list(v.values())
        elif isinstance(v, (list, tuple)):
            todo += list(v)
        elif isinstance(v, np.ndarray) and v.ndim == 2:
            found.add(v.shape)
    return found


def _broadcast_words(error, inputs):
    """Where a broadcast error of shapes comes from, in terms of the case's axes; None if the
    error is no such error."""
    m = re.search(r"could not be broadcast together with (?:remapped )?shapes (.*)", error)
    if m is None:
        return None
    shapes = [tuple(int(n) for n in t.split(",") if n.strip())
              for t in re.findall(r"\(([\d, ]*)\)", m.group(1))]
    for rows, cols in sorted(_case_shapes(inputs or {})):
        if rows != cols and (rows,) in shapes and (cols,) in shapes:
            return (f"a value per example ({rows} of them) met a value per feature ({cols}): "
                    "a statistic was reduced over the wrong axis; reduce over the batch, "
                    "axis=0")
    shown = " and ".join(str(t) for t in shapes[:2])
    return (f"arrays of shapes {shown} met in one operation: one of them comes from another "
            "axis, layer or cache entry than intended; print the shapes where they meet")


def explain_error(task, error, inputs=None):
    """A pointed hint for an exception, where the message alone is cryptic; `inputs` (the
    case's) name the axes behind a shape mismatch."""
    keys = task.cache_keys
    words = _broadcast_words(error, inputs)
    if words is not None:
        return f"{error.rstrip()} — {words}"
    if error.startswith("KeyError") and any(f"'{b}'" in error for b in _BUFFERS):
        return (f"{error} — on a fresh layer bn_param has no running statistics yet: read them "
                "with bn_param.get('running_mean', np.zeros(D)) and "
                "bn_param.get('running_var', np.ones(D))")
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


def dgamma_view(parts, devices=None):
    """Other sums a dgamma may be: parts(inputs) -> (dout, x, x_hat), each (M, F) with one
    column per γ; devices(inputs) -> per device (dout_k, x_hat_k), for a sum over one only."""
    def forms(inputs):
        dout, x, x_hat = parts(inputs)
        out = {"x_not_x_hat": ((dout * x).sum(axis=0),
                               "it sums dout·x, but γ multiplies x_hat: dgamma = "
                               "(dout * x_hat) summed over the batch")}
        for k, (d, xh) in enumerate(devices(inputs) if devices else []):
            out[f"one_device:{k == 0}"] = ((d * xh).sum(axis=0),
                                           "it sums one device's rows only, but γ is shared "
                                           "by every device: add the sums of all of them")
        return out
    return Alternatives(forms)


def without_gamma(terms, unrows, text):
    """A dx with γ left out of dx̂ = dout·γ, as an Alternatives form: the Gradient's terms made
    with γ = 1 (x̂ does not depend on γ), summed and put back in the output's layout; for layers
    whose γ varies inside a group, where no per-group factor can show it."""
    def forms(inputs):
        ones = dict(inputs, gamma=np.ones_like(inputs["gamma"]))
        return {"gamma_missing": (unrows(sum(terms(ones)[0].values())), text)}
    return Alternatives(forms)


def batchnorm_view(x_of=lambda inputs: inputs["x"], stats="batch", params="bn_param",
                   affine=True, running=None):
    """The output of a (N, D) batch norm (or standardisation, affine=False) of x_of(inputs)."""
    def source(inputs):
        if affine:
            return x_of(inputs), inputs["gamma"], inputs["beta"]
        return x_of(inputs), 1.0, 0.0
    return Normalised(source=source, eps=eps_of(params), stats=stats, running=running)


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
