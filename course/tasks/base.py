"""What a graded exercise is: inputs, a reference, known mistakes, and how a result is judged.

The same Task drives the check cells (public cases), the student fallback, the tests and the
autograder (hidden cases). Judging always happens where `evaluate` runs, from the reference
computed there, so a student process can only hand over outputs, never a verdict.
"""

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from course.batchnorm import DEFAULT_EPS, DEFAULT_MOMENTUM
from course.tasks import diagnose

PUBLIC_SEED = 0


def random_gamma_beta(rng, D, beta_mean=0.0):
    """Non-trivial γ (some negative) and β, so dropping them or applying them in the wrong place
    shows; the rng calls (and so every drawn case) are those the tasks have always made."""
    gamma = rng.uniform(0.5, 2.0, D) * rng.choice([-1.0, 1.0], D)  # (D,)
    beta = rng.normal(beta_mean, 1.0, D)  # (D,)
    return gamma, beta


def explicit_bn_param(mode="train", **buffers):
    """A case's bn_param that states eps and momentum (the course defaults) instead of relying
    on the defaults a student's code falls back to, plus any running buffers."""
    return {"mode": mode, "eps": DEFAULT_EPS, "momentum": DEFAULT_MOMENTUM, **buffers}


@dataclass(frozen=True)
class Case:
    """One input to a task; `label` says in words what kind of input it is."""

    label: str
    inputs: dict


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: a deliberately wrong implementation and the sentence that names it."""

    name: str
    message: str
    impl: tuple  # wrong versions of the task's functions, same order as Task.functions


@dataclass(frozen=True)
class Result:
    """What running the student's functions on one case produced."""

    outputs: dict = field(default_factory=dict)  # name -> np.ndarray
    mutated: tuple = ()  # names of inputs changed in place that should not have been
    error: str | None = None  # "NotImplementedError: ..." etc.


@dataclass(frozen=True)
class Verdict:
    """The judgement of one case: passed or not, and the sentence a student reads."""

    passed: bool
    message: str
    mistake: str | None = None  # Mistake.name, or "not_implemented", "exception", ...
    cause: str | None = None  # the id of the diagnose.Cause named, if one was


def default_symbols(inputs):
    """The quantities a scale or an offset of an output is named after: N, γ, β, σ."""
    out = {k: inputs[v] for k, v in (("γ", "gamma"), ("β", "beta")) if v in inputs}
    x = inputs.get("x")
    if isinstance(x, np.ndarray) and x.ndim == 2:
        params = inputs.get("bn_param") or inputs.get("ln_param") or {}
        out["N"] = x.shape[0]
        out["σ"] = np.sqrt(x.var(axis=0) + params.get("eps", DEFAULT_EPS))  # (D,)
    return out


@dataclass(frozen=True)
class Task:
    """A graded exercise: the functions a student writes and how to check them."""

    notebook: str
    points: float
    checks: str  # what is checked, in words (shown in feedback; no hidden inputs)
    reference: tuple  # reference implementations of the functions the student writes
    make_cases: Callable  # rng -> list[Case]
    run: Callable  # (fns tuple, inputs dict) -> dict of named outputs
    mistakes: tuple = ()
    mutable: tuple = ()  # inputs the functions are allowed to change in place
    rtol: float = 1e-6
    atol: float = 1e-8
    # Only for the wording of feedback, never for points (see course.tasks.diagnose).
    views: dict = field(default_factory=dict)  # output name -> diagnose.Normalised / Gradient
    symbols: Callable | None = default_symbols  # inputs -> {"N": .., "γ": .., "β": .., "σ": ..}
    cache_keys: tuple = ()  # keys of a dict cache the task hands to the student's function
    # The course functions (or installed packages, by name) the student's code may call: the
    # grader's sandbox holds these and nothing else of `course` that could compute an answer.
    may_use: tuple = ()
    # Derived, so the grade-id rule holds by construction: the names the student defines are the
    # references' names, and the grade_id is the first of them.
    functions: tuple = field(init=False)  # e.g. ("batchnorm_forward",)
    grade_id: str = field(init=False)

    def __post_init__(self):
        names = tuple(f.__name__ for f in self.reference)
        object.__setattr__(self, "functions", names)
        object.__setattr__(self, "grade_id", names[0])

    def cases(self, seed=PUBLIC_SEED):
        """The task's cases for a seed: PUBLIC_SEED for check cells, others for grading."""
        return self.make_cases(np.random.default_rng(seed))


def _same(a, b):
    """Exact equality of two nested inputs (arrays, dicts, scalars)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        # e.g. a list of shards of different lengths, which np.asarray cannot stack
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    try:
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    except TypeError:
        return np.array_equal(np.asarray(a), np.asarray(b))


class _Unanswered(Exception):
    """A function of the task raised NotImplementedError: which one, whatever its text said."""


def _named(fn, name):
    """fn, with a NotImplementedError it raises reported under its own name (a backward stub
    whose text names the forward still reads as the backward)."""
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NotImplementedError as exc:
            raise _Unanswered(name) from exc
    return call


# dtype kinds that are never a right answer here, named in the student's words
_REFUSED_KINDS = {"c": "complex numbers", "O": "Python objects", "U": "text", "S": "bytes",
                  "V": "structured records", "M": "dates", "m": "time spans"}
OUTPUT_TYPE = "OutputTypeError"


class _OutputType(Exception):
    pass


def _as_array(name, value):
    """One returned value as a float64 array; _OutputType naming what it is when it is not
    real numbers in at least double precision."""
    try:
        a = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise _OutputType(f"`{name}` is not an array of numbers ({exc})") from None
    kind = a.dtype.kind
    if kind in _REFUSED_KINDS:
        raise _OutputType(f"`{name}` holds {_REFUSED_KINDS[kind]} (dtype {a.dtype}); the "
                          "expected values are real float64 numbers")
    if kind == "f" and a.dtype.itemsize < 8:
        digits = 7 if a.dtype.itemsize == 4 else 3
        raise _OutputType(f"`{name}` is {a.dtype}, which keeps only about {digits} digits: "
                          f"return float64 values (no cast to np.{a.dtype})")
    return np.array(a, dtype=float)


def _outputs(raw):
    """Name -> float64 array; a list or tuple of arrays (one per device, say) becomes one entry
    per element, `out[0]`, `out[1]`, ..., so each element is compared on its own."""
    out = {}
    for k, v in raw.items():
        if isinstance(v, (list, tuple)) and v and all(isinstance(e, np.ndarray) and e.ndim
                                                      for e in v):
            out.update({f"{k}[{i}]": _as_array(f"{k}[{i}]", e) for i, e in enumerate(v)})
        else:
            out[k] = _as_array(k, v)
    return out


def run_case(task, fns, case):
    """Call fns on a private copy of the case's inputs and collect outputs as float arrays."""
    inputs = copy.deepcopy(case.inputs)
    named = tuple(_named(f, n) for f, n in zip(fns, task.functions, strict=False))
    try:
        raw = task.run(named, inputs)
        outputs = _outputs(raw)
    except _Unanswered as exc:
        return Result(error=f"NotImplementedError: {exc}")
    except _OutputType as exc:
        return Result(error=f"{OUTPUT_TYPE}: {exc}")
    except Exception as exc:  # noqa: BLE001 - any failure of student code is a verdict
        return Result(error=f"{type(exc).__name__}: {exc}")
    mutated = tuple(k for k in case.inputs
                    if k not in task.mutable and not _same(case.inputs[k], inputs[k]))
    return Result(outputs=outputs, mutated=mutated)


def _one_close(task, g, w):
    return (g.shape == w.shape and (np.all(np.isfinite(g)) or not np.all(np.isfinite(w)))
            and np.allclose(g, w, rtol=task.rtol, atol=task.atol))


def _close(task, got, want):
    """Every expected output returned and within tolerance."""
    return all(k in got and _one_close(task, got[k], w) for k, w in want.items())


_ELEMENT = re.compile(r"^(.*)\[(\d+)\]$")


def _sequences(outputs):
    """{base: [element arrays in order]} for outputs returned as a list (`out[0]`, ...)."""
    found = {}
    for k in outputs:
        m = _ELEMENT.match(k)
        if m:
            found.setdefault(m.group(1), {})[int(m.group(2))] = outputs[k]
    return {b: [els[i] for i in sorted(els)] for b, els in found.items()}


def _structure(key, got, want_parts):
    """A sentence when a list output has another structure than expected; None if it has the
    same (then it is judged as the concatenation of its elements)."""
    K = len(want_parts)
    parts = _sequences(got).get(key)
    if parts is None:
        if key in got:
            return (f"`{key}` is one array of shape {got[key].shape}; expected a list of {K} "
                    "arrays, one per device, in device order")
        return f"no `{key}` was returned"
    if len(parts) != K:
        return f"`{key}` is a list of {len(parts)} arrays; expected {K}, one per device"
    if any(g.shape != w.shape for g, w in zip(parts, want_parts, strict=True)):
        i = next(i for i, (g, w) in enumerate(zip(parts, want_parts, strict=True))
                 if g.shape != w.shape)
        text = (f"`{key}[{i}]` (device {i}) has shape {parts[i].shape}, expected "
                f"{want_parts[i].shape}")
        reordered = [next((j for j, w in enumerate(want_parts) if w.shape == g.shape
                           and np.allclose(g, w, rtol=1e-6, atol=1e-8)), None) for g in parts]
        if None not in reordered and sorted(reordered) == list(range(K)):
            return text + (f": the devices' outputs come in the order {reordered}; return them "
                           "in the order of the shards")
        try:
            same_rows = np.allclose(np.concatenate(parts), np.concatenate(want_parts),
                                    rtol=1e-6, atol=1e-8)
        except ValueError:
            same_rows = False
        if same_rows:
            text += (": the rows are right but split at the wrong places; device k's output "
                     "holds the rows of device k's shard")
        return text
    return None


@dataclass
class _Pending:
    """A failed case whose words wait for the other cases (see evaluate_all)."""

    summary: str
    facts: list  # sentences that need no agreement: missing outputs, structure
    readings: dict  # output name -> diagnose.Reading
    structural: bool = False  # a list output came back in another structure


def _regroup(task, got, want):
    """(got, want, facts): list outputs concatenated where their structure matches, a sentence
    for each where it does not."""
    got, want, facts = dict(got), dict(want), []
    for base, parts in _sequences(want).items():
        text = _structure(base, got, parts)
        for i in range(len(parts)):
            want.pop(f"{base}[{i}]")
        got_parts = _sequences(got).get(base, [])
        for i in range(len(got_parts)):
            got.pop(f"{base}[{i}]", None)
        if text is None:
            got[base], want[base] = np.concatenate(got_parts), np.concatenate(parts)
        else:
            got.pop(base, None)
            facts.append((base, text))
    return got, want, facts


def _judge(task, case, result):
    """(Verdict, None) when the case is decided alone; (None, _Pending) when its words wait."""
    if result.error is not None:
        if result.error.startswith("NotImplementedError"):
            name = result.error.partition(": ")[2] or ", ".join(task.functions)
            return Verdict(False, f"`{name}` is not implemented yet", "not_implemented"), None
        if result.error.startswith(f"{OUTPUT_TYPE}: "):
            return Verdict(False, result.error.partition(": ")[2], "output_type"), None
        return Verdict(False, f"raised {diagnose.explain_error(task, result.error)}",
                       "exception"), None
    expected = run_case(task, task.reference, case)
    if expected.error is not None:  # a broken reference is our bug, never the student's
        raise RuntimeError(f"reference for {task.grade_id} failed: {expected.error}")
    ok = _close(task, result.outputs, expected.outputs)
    if ok and not result.mutated:
        return Verdict(True, "correct"), None
    got, want, facts = _regroup(task, result.outputs, expected.outputs)
    structural = {k for k, _ in facts}
    right = [k for k, w in want.items() if k in got and _one_close(task, got[k], w)]
    wrong = [k for k in want if k not in right] + sorted(structural)
    summary = diagnose.right_and_wrong(right, wrong) if not ok else ""
    for m in task.mistakes:
        wrong_out = run_case(task, m.impl, case)
        if wrong_out.error is None and _close(task, result.outputs, wrong_out.outputs):
            return Verdict(False, (f"{summary}. " if summary else "") + m.message, m.name), None
    if result.mutated:
        names = ", ".join(f"`{k}`" for k in result.mutated)
        return Verdict(False, f"changed its input {names} in place; compute on new arrays "
                              "(e.g. x - mu, not x -= mu)", "mutates_input"), None
    missing = [k for k in want if k not in got]
    facts = [f"no `{k}` was returned" for k in missing] + [t for _, t in facts]
    readings = {k: _read(task, case, k, got, want) for k in want
                if k in got and k not in right}
    return None, _Pending(summary, facts, readings, bool(structural))


def _read(task, case, key, got, want):
    """The diagnose.Reading of one output; never an error, whatever the student returned."""
    try:
        return diagnose.explain_output(task, case.inputs, key, got[key], want[key], want)
    except Exception:  # noqa: BLE001 - a hint must never break a verdict (or the grader)
        g, w = got[key], want[key]
        if g.shape != w.shape:
            return diagnose.Reading((), f"`{key}` has shape {g.shape}, expected {w.shape}")
        err = float(np.max(np.abs(g - w))) if g.size else 0.0
        return diagnose.Reading((), f"`{key}` differs from the expected values (max abs error "
                                    f"{err:.2e})")


def _agreed(pendings):
    """Output name -> the slips (diagnose.Cause components) that every explanation fitting the
    output in every case it failed has in common; absent when there are none. A cause that
    fits some cases only never counts; when two causes fit everywhere, only what they share is
    named (a whole-array mean, whichever way ε went, which the case cannot tell). A plain factor
    or offset of the output (diagnose.RESTATEMENTS) that fits alongside a specific cause is that
    cause seen from outside (x̂/σ is "times 1/σ"), not a rival."""
    ids, parts = {}, {}
    for p in pendings:
        for key, reading in p.readings.items():
            found = {c.id for c in reading.causes}
            ids[key] = found if key not in ids else ids[key] & found
            for c in reading.causes:
                parts.setdefault(key, {})[c.id] = {q.id for q in c.components}
    agreed = {}
    for key, found in ids.items():
        specific = {i for i in found if not i.startswith(diagnose.RESTATEMENTS)}
        top = specific or found
        if top:
            shared = set.intersection(*(parts[key][i] for i in top))
            if shared:
                agreed[key] = shared
    return agreed


def _words(pending, agreed):
    parts, named = list(pending.facts), []
    for key, reading in pending.readings.items():
        shared = agreed.get(key, set())
        pieces = {}
        for c in reading.causes:  # this case's words for the shared slips, in cause order
            for q in c.components:
                if q.id in shared:
                    pieces.setdefault(q.id, q.text)
        if len(pieces) == 1 and any(c.id in pieces for c in reading.causes):
            parts.append(next(c.text for c in reading.causes if c.id in pieces))
        elif pieces:
            parts.append(f"`{key}`: " + "; ".join(pieces.values()))
        else:
            parts.append(reading.located or f"`{key}` differs from the expected values")
        named += sorted(pieces)
    if pending.structural:  # a list returned in another shape than expected: a fact, named
        named.insert(0, "structure")
    message = (f"{pending.summary}. " if pending.summary else "") + "; ".join(parts)
    return Verdict(False, message, "wrong_output", "; ".join(named) or None)


def evaluate_all(task, cases, results):
    """Judge every case of one check: compare with the reference and, if wrong, name a known
    mistake, or the one explanation that fits every case the output failed, or else say which
    outputs and properties are off (the wording never changes the verdicts)."""
    judged = [_judge(task, c, r) for c, r in zip(cases, results, strict=True)]
    agreed = _agreed([p for _, p in judged if p is not None])
    return [v if p is None else _words(p, agreed) for v, p in judged]


def evaluate(task, case, result):
    """Judge one case on its own (a cause is named only if it alone fits this case)."""
    return evaluate_all(task, [case], [result])[0]


def score(task, verdicts):
    """Points earned: the task's points times the fraction of cases passed."""
    if not verdicts:
        return 0.0
    return round(task.points * sum(v.passed for v in verdicts) / len(verdicts), 2)
