"""What a graded exercise is: inputs, a reference, known mistakes, and how a result is judged.

The same Task drives the check cells (public cases), the student fallback, the tests and the
autograder (hidden cases). Judging always happens where `evaluate` runs, from the reference
computed there, so a student process can only hand over outputs, never a verdict.
"""

import copy
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
    dtypes: dict = field(default_factory=dict)  # name -> dtype name, when it was not float64


@dataclass(frozen=True)
class Verdict:
    """The judgement of one case: passed or not, and the sentence a student reads."""

    passed: bool
    message: str
    mistake: str | None = None  # Mistake.name, or "not_implemented", "exception", ...


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


def run_case(task, fns, case):
    """Call fns on a private copy of the case's inputs and collect outputs as float arrays."""
    inputs = copy.deepcopy(case.inputs)
    try:
        raw = task.run(tuple(fns), inputs)
        outputs = {k: np.array(v, dtype=float) for k, v in raw.items()}
    except Exception as exc:  # noqa: BLE001 - any failure of student code is a verdict
        return Result(error=f"{type(exc).__name__}: {exc}")
    mutated = tuple(k for k in case.inputs
                    if k not in task.mutable and not _same(case.inputs[k], inputs[k]))
    dtypes = {k: str(np.asarray(v).dtype) for k, v in raw.items()
              if np.asarray(v).dtype.kind == "f" and np.asarray(v).dtype != np.float64}
    return Result(outputs=outputs, mutated=mutated, dtypes=dtypes)


def _close(task, got, want):
    """(ok, reason) comparing the outputs a student produced with the expected ones."""
    for key, w in want.items():
        if key not in got:
            return False, f"no `{key}` was returned"
        g = got[key]
        if g.shape != w.shape:
            return False, f"`{key}` has shape {g.shape}, expected {w.shape}"
        if not np.all(np.isfinite(g)) and np.all(np.isfinite(w)):
            return False, f"`{key}` contains NaN or infinity"
        if not np.allclose(g, w, rtol=task.rtol, atol=task.atol):
            err = float(np.max(np.abs(g - w)))
            return False, f"`{key}` differs from the expected values (max abs error {err:.2e})"
    return True, ""


def _one_close(task, g, w):
    return (g.shape == w.shape and (np.all(np.isfinite(g)) or not np.all(np.isfinite(w)))
            and np.allclose(g, w, rtol=task.rtol, atol=task.atol))


def _explain(task, case, key, got, want, dtype):
    """The property diagnosis of one output; never an error, whatever the student returned."""
    try:
        return diagnose.explain_output(task, case.inputs, key, got, want[key], want, dtype)
    except Exception:  # noqa: BLE001 - a hint must never break a verdict (or the grader)
        if got.shape != want[key].shape:
            return f"`{key}` has shape {got.shape}, expected {want[key].shape}"
        err = float(np.max(np.abs(got - want[key]))) if got.size else 0.0
        return f"`{key}` differs from the expected values (max abs error {err:.2e})"


def _diagnosis(task, case, result, expected):
    """Which outputs are right, and for each wrong one what its properties point at."""
    got, want = result.outputs, expected
    missing = [k for k in want if k not in got]
    right = [k for k in want if k in got and _one_close(task, got[k], want[k])]
    wrong = [k for k in want if k in got and k not in right]
    parts = [f"no `{k}` was returned" for k in missing]
    parts += [_explain(task, case, k, got[k], want, result.dtypes.get(k)) for k in wrong]
    summary = diagnose.right_and_wrong(right, missing + wrong)
    return (f"{summary}. " if summary else "") + "; ".join(parts)


def evaluate(task, case, result):
    """Judge one case: compare with the reference and, if wrong, name a known mistake or say
    what the wrong outputs' properties point at (the wording never changes the verdict)."""
    if result.error is not None:
        if result.error.startswith("NotImplementedError"):
            return Verdict(False, "not implemented yet", "not_implemented")
        return Verdict(False, f"raised {diagnose.explain_error(task, result.error)}", "exception")
    expected = run_case(task, task.reference, case)
    if expected.error is not None:  # a broken reference is our bug, never the student's
        raise RuntimeError(f"reference for {task.grade_id} failed: {expected.error}")
    ok, _ = _close(task, result.outputs, expected.outputs)
    if ok and not result.mutated:
        return Verdict(True, "correct")
    if not ok:
        right = [k for k, w in expected.outputs.items()
                 if k in result.outputs and _one_close(task, result.outputs[k], w)]
        wrong = [k for k in expected.outputs if k not in right]
        summary = diagnose.right_and_wrong(right, wrong)
    for m in task.mistakes:
        wrong_out = run_case(task, m.impl, case)
        if wrong_out.error is None and _close(task, result.outputs, wrong_out.outputs)[0]:
            return Verdict(False, (f"{summary}. " if not ok and summary else "") + m.message,
                           m.name)
    if result.mutated:
        names = ", ".join(f"`{k}`" for k in result.mutated)
        return Verdict(False, f"changed its input {names} in place; compute on new arrays "
                              "(e.g. x - mu, not x -= mu)", "mutates_input")
    return Verdict(False, _diagnosis(task, case, result, expected.outputs), "wrong_output")


def score(task, verdicts):
    """Points earned: the task's points times the fraction of cases passed."""
    if not verdicts:
        return 0.0
    return round(task.points * sum(v.passed for v in verdicts) / len(verdicts), 2)
