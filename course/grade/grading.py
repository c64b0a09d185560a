"""Turn raw student outputs into points: evaluate and score in the grader's own process."""

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field

from course.grade import submission, text
from course.grade.sandbox import copy as grading_copy
from course.grade.sandbox import runner
from course.grade.sandbox.failures import Failure, from_error
from course.tasks.base import PUBLIC_SEED, evaluate_all, score


@dataclass
class QuestionGrade:
    """Points and diagnosis for one question (points is None for a written answer)."""

    question: object  # questions.Question
    points: float | None = 0.0
    verdicts: list = field(default_factory=list)  # (case label, Verdict)
    status: str | None = None  # "timeout in batchnorm_forward", ...
    notes: list = field(default_factory=list)
    flag: str | None = None
    written: str = ""
    raised: str | None = None  # what the answer cell raised (student text: quoted in feedback)


@dataclass
class NotebookGrade:
    notebook: str
    file: str | None
    questions: list  # QuestionGrade
    status: list = field(default_factory=list)
    details: list = field(default_factory=list)  # raw text behind a grader error (quoted)


@dataclass
class StudentGrade:
    student: str
    notebooks: list  # NotebookGrade, in notebook order
    status: str = "ok"
    notes: list = field(default_factory=list)

    @property
    def graded(self):
        return [q for nb in self.notebooks for q in nb.questions]

    @property
    def total(self):
        return round(sum(q.points or 0 for q in self.graded if not q.question.manual), 2)

    @property
    def max_total(self):
        return round(sum(q.question.points for q in self.graded if not q.question.manual), 2)


def hidden_seed(secret, question):
    """A seed for one question (its gradebook column) derived from the secret; never public."""
    seed = int.from_bytes(hashlib.sha256(f"{secret}\0{question}".encode()).digest()[:8], "big")
    return seed if seed != PUBLIC_SEED else seed + 1


def _case_status(q, verdicts):
    """A status for failures that happen inside a case but leave the process alive."""
    for _, v in verdicts:
        if v.mistake == "exception":
            kind = from_error(v.message.removeprefix("raised "))
            if kind:
                return Failure(kind).status(q.functions)
    return None


def run_groups(course, nb_id, plan, cases, limits, deadline=float("inf")):
    """runner.run_plan for each group of the notebook's questions (copy.groups) in processes of
    its own, every answer cell run in each; one notebook time limit shared by all the groups."""
    outcome = runner.Outcome()
    end = time.monotonic() + limits.total_timeout
    for gids in grading_copy.groups(course.tasks, nb_id):
        todo = [g for g in plan.questions if g in gids]
        if not todo:
            continue
        cells = [runner.Cell(c.source, c.label, tuple(q for q in c.questions if q in gids))
                 for c in plan.cells]
        part = runner.run_plan(dataclasses.replace(plan, cells=cells, questions=todo),
                               {g: cases[g] for g in todo},
                               dataclasses.replace(limits, total_timeout=max(
                                   0.0, end - time.monotonic())), deadline)
        outcome.results.update(part.results)
        outcome.failures.update(part.failures)
        outcome.mutated.update(part.mutated)
        for gid, err in part.cell_errors.items():
            outcome.cell_errors.setdefault(gid, err)
        outcome.error = outcome.error or part.error
    return outcome


def grade_notebook(course, nb_id, nb, secret, limits, deadline=float("inf")):
    """Grade one student notebook; a failure costs only the question it happened in."""
    ex = submission.extract(course, nb_id, nb)
    seeds = {g: hidden_seed(secret, f"{nb_id}:{g}") for g in ex.plan.questions}
    cases = {g: course.tasks[nb_id, g].cases(seeds[g]) for g in ex.plan.questions}  # sent
    outcome = run_groups(course, nb_id, ex.plan, cases, limits, deadline)
    grades = []
    for q in course.questions_of(nb_id):
        g = QuestionGrade(q, notes=list(ex.notes.get(q.grade_id, [])),
                          flag=ex.flags.get(q.grade_id))
        grades.append(g)
        if q.manual:
            g.points, g.written = None, ex.written.get(q.grade_id, "")
            continue
        cell_error = outcome.cell_errors.get(q.grade_id)
        if cell_error:
            g.raised = str(cell_error)
            kind = from_error(cell_error)
            if kind:
                g.status = Failure(kind, cell=q.grade_id).status(q.functions)
        if q.grade_id in outcome.failures:
            g.status = outcome.failures[q.grade_id].status(q.functions)
            continue
        results = outcome.results.get(q.grade_id)
        if results is None:
            continue
        task = course.tasks[nb_id, q.grade_id]
        cases = task.cases(seeds[q.grade_id])
        inputs = {k for c in cases for k in c.inputs}
        changed = [k for k in outcome.mutated.get(q.grade_id, ()) if k in inputs]  # real names
        if changed:  # only the student process saw it: advice, never points
            g.notes.append(f"your function changed its input {', '.join(f'`{k}`' for k in changed)}"
                           " in place; compute on new arrays (e.g. x - mu, not x -= mu)")
        results = list(results[:len(cases)])
        results += [runner.Result(error="RuntimeError: no result")] * (len(cases) - len(results))
        g.verdicts = list(zip([c.label for c in cases], evaluate_all(task, cases, results),
                              strict=True))
        g.points = score(task, [v for _, v in g.verdicts])
        g.status = g.status or _case_status(q, g.verdicts)
    nbg = NotebookGrade(nb_id, None, grades)
    if outcome.error:  # its text may come from the student process: details, not the status
        nbg.status.append("grader error (" + ("setup cells failed" if outcome.error.startswith(
            "setup cells failed") else "the grading process failed before student code") + ")")
        nbg.details.append(str(outcome.error))
    nbg.status += [g.status for g in grades if g.status]
    return nbg


def _missing(course, nb_id, reason):
    grades = [QuestionGrade(q, points=None if q.manual else 0.0)
              for q in course.questions_of(nb_id)]
    return NotebookGrade(nb_id, None, grades, [reason])


def _isolated(course, nb_id, nb, secret, limits, deadline):
    """grade_notebook, but a grader failure costs only this notebook's questions."""
    try:
        return grade_notebook(course, nb_id, nb, secret, limits, deadline)
    except Exception as exc:  # noqa: BLE001 - the student's other notebooks are still graded
        return _missing(course, nb_id, f"grader error ({type(exc).__name__})")


def grade_submission(course, target, secret, limits, only=None):
    """Grade everything one student handed in (a folder or one .ipynb)."""
    sub = submission.collect(target, course)
    wanted = [n for n in course.notebook_ids if only is None or n in only]
    handed_in = set(sub.notebooks) | set(sub.broken)
    expected = wanted if sub.folder else [n for n in wanted if n in handed_in]
    notebooks, status = [], []
    deadline = time.monotonic() + limits.submission_timeout  # shared by all the notebooks
    for nb_id in expected:
        if nb_id in sub.notebooks:
            path, nb = sub.notebooks[nb_id]
            nbg = _isolated(course, nb_id, nb, secret, limits, deadline)
            nbg.file = path.name
            nbg.status[:0] = sub.remarks.get(nb_id, [])
        elif nb_id in sub.broken:
            nbg = _missing(course, nb_id, sub.broken[nb_id])
        else:
            nbg = _missing(course, nb_id, "missing")
        notebooks.append(nbg)
        prefix = f"{nb_id}: " if len(expected) > 1 else ""
        status += [prefix + s for s in nbg.status]
    others = {}  # files without a notebook's name: counted by reason (their names are the
    for name, reason in sub.broken.items():  # student's text, so they go to the feedback only)
        if name not in course.notebook_ids:
            others[reason] = others.get(reason, 0) + 1
    for reason, n in others.items():
        status.append(f"{reason}: {n} file{'s' if n > 1 else ''}" if sub.folder else reason)
    if not notebooks and not status:
        status.append("no course notebooks found")
    return StudentGrade(sub.student, notebooks, text.status("; ".join(status) or "ok"), sub.notes)
