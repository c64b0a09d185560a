"""The gradable questions of the course: auto-graded Tasks from the registry, written answers
(nbgrader `grade: true` cells without a Task) graded by hand, and each notebook's setup cells."""

import importlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from course import notebook as nbtools


@dataclass(frozen=True)
class Question:
    """One column of the gradebook."""

    notebook: str
    grade_id: str
    points: float
    manual: bool  # a written answer the instructor grades; never auto-scored
    functions: tuple = ()
    prompt: str = ""  # for written answers: the question heading
    checks: str = ""  # for tasks: what is checked, in words

    @property
    def column(self):
        return f"{self.notebook}:{self.grade_id}"


@dataclass
class Course:
    """Where questions come from: a task registry module and a folder of solution notebooks."""

    registry: str = "course.tasks"
    solutions: Path = field(default_factory=nbtools.grading_sources)
    path: list = field(default_factory=list)  # extra sys.path for the student process (tests)

    @cached_property
    def tasks(self):
        """(notebook, grade_id) -> Task, from the registry (which the student process imports)."""
        return importlib.import_module(self.registry).all_tasks()

    @cached_property
    def sources(self):
        """notebook id -> solution notebook (the instructor source)."""
        found = {}
        for path in sorted(Path(self.solutions).glob("[0-9][0-9]_*.ipynb")):
            nb = nbtools.read(path)
            found[nbtools.notebook_id(nb, path)] = nb
        return found

    @cached_property
    def questions(self):
        """Every question, notebook by notebook, in the order the solution notebook asks them."""
        out = []
        for nb_id in self.notebook_ids:
            seen = set()  # grade_ids are unique within a notebook only
            nb = self.sources.get(nb_id)
            heading = ""
            for cell in nb.cells if nb is not None else []:
                if cell.cell_type == "markdown" and cell.source.lstrip().startswith("#") \
                        and "answer" not in nbtools.tags(cell):
                    heading = cell.source.strip().splitlines()[0].lstrip("# ").strip()
                gid = nbtools.grade_id(cell)
                if not gid or gid in seen or "answer" not in nbtools.tags(cell):
                    continue
                seen.add(gid)
                meta = cell.metadata.get("nbgrader", {})
                task = self.tasks.get((nb_id, gid))
                if task is not None:
                    out.append(Question(nb_id, gid, float(task.points), False, task.functions,
                                        checks=task.checks))
                elif meta.get("grade"):
                    out.append(Question(nb_id, gid, float(meta.get("points", 0)), True,
                                        prompt=heading))
            for task in self.tasks.values():  # a task without an answer cell is still graded
                if task.notebook == nb_id and task.grade_id not in seen:
                    seen.add(task.grade_id)
                    out.append(Question(nb_id, task.grade_id, float(task.points), False,
                                        task.functions, checks=task.checks))
        return out

    @cached_property
    def notebook_ids(self):
        return sorted(set(self.sources) | {t.notebook for t in self.tasks.values()})

    def questions_of(self, nb_id):
        return [q for q in self.questions if q.notebook == nb_id]

    def setup(self, nb_id):
        """Sources of the official setup cells, always from the solution notebook."""
        nb = self.sources.get(nb_id)
        return [c.source for c in nbtools.setup_cells(nb)] if nb is not None else []
