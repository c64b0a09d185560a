"""Registry of every graded exercise, collected from the modules in this package.

A notebook's tasks live in their own module (nb02.py, ...) as a list named TASKS; adding a
module is all it takes for checks, tests and the grader to pick the tasks up.
"""

import importlib
import pkgutil
from functools import cache

from course.tasks.base import Case, Mistake, Result, Task, Verdict, evaluate, run_case, score

__all__ = ["Case", "Mistake", "Result", "Task", "Verdict", "evaluate", "run_case", "score",
           "all_tasks", "get", "for_notebook"]


@cache
def all_tasks():
    """Every task in the course, keyed by grade_id (unique across notebooks)."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for task in getattr(module, "TASKS", []):
            if task.grade_id in found:
                raise ValueError(f"grade_id {task.grade_id!r} is defined twice")
            found[task.grade_id] = task
    return found


def get(grade_id):
    """The task with this grade_id."""
    try:
        return all_tasks()[grade_id]
    except KeyError:
        raise KeyError(f"no graded task {grade_id!r}; known: {sorted(all_tasks())}") from None


def for_notebook(notebook_id):
    """The tasks of one notebook, in registry order."""
    return [t for t in all_tasks().values() if t.notebook == notebook_id]
