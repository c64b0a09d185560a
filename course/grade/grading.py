"""Turn raw student outputs into points: evaluate and score in the grader's own process."""

import hashlib
import threading
import time
from dataclasses import dataclass, field

from course.grade import submission, text
from course.grade.sandbox import runner
from course.grade.sandbox.failures import Failure, from_error
from course.grade.sandbox.wire import Oversized
from course.tasks.base import PUBLIC_SEED, Verdict, evaluate_all, run_case, score


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


def _bounds(task, case):
    """({output name: reference shape}, {output name: most elements}) on one case. The most is
    the biggest output of the reference or any known mistake: anything bigger is a shape the
    grader never needs to look inside, so it is never decoded."""
    expected = run_case(task, task.reference, case)
    if expected.error is not None:  # a broken reference is our bug, never the student's
        raise RuntimeError(f"reference for {task.grade_id} failed: {expected.error}")
    most = {k: v.size for k, v in expected.outputs.items()}
    for m in task.mistakes:
        for k, v in run_case(task, m.impl, case).outputs.items():
            most[k] = max(most.get(k, 0), v.size)
    return {k: v.shape for k, v in expected.outputs.items()}, most


_bounds_cache, _bounds_lock = {}, threading.Lock()


def output_bounds(course, nb_id, gid, seed):
    """Per hidden case of a question, what _bounds says; the same for every student of a run
    (one seed per question), so computed once."""
    key = (id(course), nb_id, gid, seed)
    with _bounds_lock:
        if key not in _bounds_cache:
            task = course.tasks[nb_id, gid]
            _bounds_cache[key] = [_bounds(task, c) for c in task.cases(seed)]
        return _bounds_cache[key]


def _oversized(result, shapes):
    """The verdict on an output too big to decode (judged by its shape alone), or None."""
    for key, got in result.outputs.items():
        if isinstance(got, Oversized):  # a name the task has no output for: 0 elements allowed
            want = f"expected {shapes[key]}" if key in shapes else "not an output of this task"
            return Verdict(False, f"`{key}` has shape {got.shape}, {want}", "shape")
    return None


def _verdicts(task, cases, results, bounds):
    """evaluate_all(), but a case with an output too big to decode is judged by its shape (and
    stands in as an error for the explanation the other cases share)."""
    shaped = [_oversized(r, b[0]) for r, b in zip(results, bounds, strict=True)]
    plain = [runner.Result(error="RuntimeError: output not decoded") if v else r
             for r, v in zip(results, shaped, strict=True)]
    return [v or judged for v, judged in zip(shaped, evaluate_all(task, cases, plain),
                                             strict=True)]


def _case_status(q, verdicts):
    """A status for failures that happen inside a case but leave the process alive."""
    for _, v in verdicts:
        if v.mistake == "exception":
            kind = from_error(v.message.removeprefix("raised "))
            if kind:
                return Failure(kind).status(q.functions)
    return None


def grade_notebook(course, nb_id, nb, secret, limits, deadline=float("inf")):
    """Grade one student notebook; a failure costs only the question it happened in."""
    ex = submission.extract(course, nb_id, nb)
    seeds = {g: hidden_seed(secret, f"{nb_id}:{g}") for g in ex.plan.questions}
    cases = {g: course.tasks[nb_id, g].cases(seeds[g]) for g in ex.plan.questions}  # sent
    bounds = {g: output_bounds(course, nb_id, g, seeds[g]) for g in cases}
    outcome = runner.run_plan(ex.plan, cases, {g: [m for _, m in b] for g, b in bounds.items()},
                              limits, deadline)
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
        g.verdicts = list(zip([c.label for c in cases],
                              _verdicts(task, cases, results, bounds[q.grade_id]), strict=True))
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
