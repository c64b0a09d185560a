"""Registry of every graded exercise, collected from the modules in this package.

A notebook's tasks live in their own module (nb02.py, ...) as a list named TASKS; adding a
module is all it takes for checks, tests and the grader to pick the tasks up. A task's grade_id
is the name of the first function it grades, so two notebooks may grade the same function (02 and
04 both grade batchnorm_forward): a task is identified by (notebook, grade_id), like the
gradebook column `<notebook>:<grade_id>`.
"""

import importlib
import pkgutil
from functools import cache

from course.tasks.base import (
    Case,
    Mistake,
    Result,
    Task,
    Verdict,
    evaluate,
    evaluate_all,
    random_gamma_beta,
    run_case,
    score,
)

__all__ = ["Case", "Mistake", "Result", "Task", "Verdict", "evaluate", "evaluate_all",
           "random_gamma_beta", "run_case", "score", "all_tasks", "get", "for_notebook"]


@cache
def all_tasks():
    """Every task in the course, keyed by (notebook, grade_id)."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for task in getattr(module, "TASKS", []):
            key = (task.notebook, task.grade_id)
            if key in found:
                raise ValueError(f"{task.notebook}: grade_id {task.grade_id!r} is defined twice")
            found[key] = task
    return found


def get(grade_id, notebook=None):
    """The task with this grade_id; `notebook` is needed only when two notebooks share the id."""
    found = [t for (nb, gid), t in all_tasks().items()
             if gid == grade_id and notebook in (None, nb)]
    if len(found) == 1:
        return found[0]
    if found:
        raise KeyError(f"grade_id {grade_id!r} is graded in {', '.join(t.notebook for t in found)}"
                       f"; say which with notebook=...")
    where = f" in notebook {notebook!r}" if notebook else ""
    known = sorted({gid for _, gid in all_tasks()})
    raise KeyError(f"no graded task {grade_id!r}{where}; known: {known}")


def for_notebook(notebook_id):
    """The tasks of one notebook, in registry order."""
    return [t for t in all_tasks().values() if t.notebook == notebook_id]
