"""Check cells: run a student's function on public cases and say what is right or wrong."""

import contextlib
import re
import sys
import warnings

from course.tasks import evaluate_all, get, run_case
from course.tasks.base import PUBLIC_SEED

_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?")


def _gist(message):
    """A message without its numbers: the same slip in cases of other sizes reads the same."""
    return _NUMBER.sub("#", message)


def _verdicts(task, fns, seed=PUBLIC_SEED):
    cases = task.cases(seed)
    results = [run_case(task, fns, case) for case in cases]
    return list(zip(cases, evaluate_all(task, cases, results), strict=True))


def _unanswered(task, results):
    """The functions that raised NotImplementedError, in the task's order."""
    said = " ".join(v.message for _, v in results if v.mistake == "not_implemented")
    return [n for n in task.functions if f"`{n}`" in said]


class Passed:
    """Whether every case passed: truthy or falsy, and silent as a cell's last value (the table
    above already says it; a bare True/False under it says nothing new)."""

    def __init__(self, value):
        self.value = bool(value)

    def __bool__(self):
        return self.value

    def __eq__(self, other):
        return bool(other) == self.value if isinstance(other, (bool, Passed)) else NotImplemented

    __hash__ = None

    def __repr__(self):
        return f"Passed({self.value})"

    def _ipython_display_(self):
        pass


def check(grade_id, *fns, notebook=None):
    """Print a short table of verdicts for the student's function(s); truthy if all pass."""
    task = get(grade_id, notebook)  # notebook: only for an id two notebooks share
    names = ", ".join(f"{n}()" for n in task.functions)
    borrowed = [n for n, f in zip(task.functions, fns, strict=False)
                if any(f is r for r in task.reference)]
    results = _verdicts(task, fns)
    if borrowed and all(v.passed for _, v in results):  # never praise the course's own code
        print("✗ The course reference is checked here, not your answer: the name(s)\n"
              f"  {', '.join(borrowed)}\n"
              "  hold the course's functions. A demo cell below puts them in your answer's\n"
              "  place while it fails its check (or your cell imports them). Run your answer\n"
              "  cell, then this check.")
        return Passed(False)
    if borrowed:  # a failure is then the student's other function's: judged as usual
        print(f"(the course's own {', '.join(borrowed)} is used here, not yours)")
    if any(v.mistake == "not_implemented" for _, v in results):
        todo = ", ".join(f"{n}()" for n in _unanswered(task, results)) or names
        print(f"… {todo}: not implemented yet. "
              "Fill in the cell above, run it, then run this check.")
        return Passed(False)
    print(f"Checking {names}: {task.checks}")
    said = set()
    for case, v in results:
        if v.passed:
            print(f"  ✓ {case.label}")
        elif _gist(v.message) in said:  # one line for a message repeated across cases
            print(f"  ✗ {case.label} — same as above")
        else:
            said.add(_gist(v.message))
            print(f"  ✗ {case.label} — {v.message}")
    passed = sum(v.passed for _, v in results)
    if passed == len(results):
        print(f"All {passed} cases pass. Well done!")
    else:
        print(f"{passed}/{len(results)} cases pass.")
    return Passed(passed == len(results))


def use_or_reference(grade_id, *fns, notebook=None):
    """The student's function(s) if they pass the check, else the course reference (with a note)."""
    task = get(grade_id, notebook)
    if all(v.passed for _, v in _verdicts(task, fns)):
        return fns[0] if len(fns) == 1 else tuple(fns)
    names = ", ".join(task.functions)
    print(f"Note: {names} does not pass its check yet, "
          "so the cells below use the course reference.")
    ref = task.reference
    return ref[0] if len(ref) == 1 else tuple(ref)


def assert_passes(grade_id, *fns, notebook=None, seed=PUBLIC_SEED):
    """Raise AssertionError naming each failed case in the check cells' words (nbgrader tests)."""
    task = get(grade_id, notebook)
    kind = "public" if seed == PUBLIC_SEED else "hidden"
    # nbgrader awards 0 to a test cell that writes to stderr: a warning from correct code (or a
    # student's debugging print to stderr) must not cost the points, only a failed case may.
    with warnings.catch_warnings(), contextlib.redirect_stderr(sys.stdout):
        warnings.simplefilter("ignore")
        results = _verdicts(task, fns, seed)
    names = ", ".join(f"{n}()" for n in task.functions)
    failed = [(case, v) for case, v in results if not v.passed]
    if failed:
        lines = [f"{names}: {len(results) - len(failed)}/{len(results)} {kind} cases pass."]
        by_message = {}  # one line per mistake, first words first: nbgrader cuts long lines
        for case, v in failed:
            by_message.setdefault(v.message, []).append(case.label)
        lines += [f"  ✗ {message} (cases: {'; '.join(labels)})"
                  for message, labels in by_message.items()]
        raise AssertionError("\n".join(lines))
    print(f"{names}: all {len(results)} {kind} cases pass.")
