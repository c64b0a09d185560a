"""Run one student notebook's plan in fresh, limited, sandboxed processes and collect outputs.

The conversation with a student process is a state machine in the grader: start-up, setup,
each answer cell in turn, then each question in turn. A frame that does not fit the current
state (out of order, oversized, malformed, forged) is a protocol failure of the step that was
running; the step timer restarts only when the state advances, never on a frame. A failure
(timeout, death, memory, output, protocol) is pinned on the cell or question that was running;
that question is marked and a fresh process grades the rest, until every question has an answer
or the whole-submission deadline passes.
"""

import json
import os
import select
import shutil
import signal
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from course.grade.sandbox import wire
from course.grade.sandbox.failures import Failure, Kind
from course.grade.sandbox.launch import env_for, kill_all, launch
from course.tasks.base import Result

LOG_TAIL = 4096  # bytes of the output log the grader ever reads back


@dataclass(frozen=True)
class Limits:
    """Per-step and whole-notebook time, memory and output caps."""

    timeout: float = 30.0  # per question, per answer cell, and for start-up
    total_timeout: float = 300.0  # one notebook, restarts included
    submission_timeout: float = 1200.0  # everything one student handed in
    memory_mb: int = 1024  # on top of what Python + numpy + matplotlib use
    output_bytes: int = 2 * 2**20


@dataclass
class Cell:
    """A piece of student code to run, and the questions that depend on it."""

    source: str
    label: str
    questions: tuple


@dataclass
class Plan:
    """What to run for one student notebook."""

    notebook: str
    setup: list  # official setup sources, from the solution notebook
    cells: list  # Cell, in the student's order
    questions: list  # grade_ids of auto-graded tasks, in order
    registry: str = "course.tasks"
    path: list = field(default_factory=list)  # extra sys.path entries (test fixtures)


@dataclass
class Outcome:
    """Raw results of a plan: per-question Results, per-question failures, cell errors."""

    results: dict = field(default_factory=dict)  # gid -> [Result]
    failures: dict = field(default_factory=dict)  # gid -> Failure
    cell_errors: dict = field(default_factory=dict)  # gid -> error text of its answer cell
    mutated: dict = field(default_factory=dict)  # gid -> input names reported changed (advice)
    error: str | None = None  # a failure that is not the student's (setup cells broke)


def _tail(log):
    """(size, last bytes as text) of the log, read through the grader's own descriptor."""
    try:
        size = os.fstat(log.fileno()).st_size
        log.seek(max(0, size - LOG_TAIL))
        return size, log.read(LOG_TAIL).decode(errors="replace")
    except (OSError, ValueError):
        return 0, ""


def _results(header, arrays, n_cases):
    """(Results, mutated names) from one question frame; anything malformed is a ProtocolError."""
    cases = header.get("cases")
    if not isinstance(cases, list) or len(cases) != n_cases:
        raise wire.ProtocolError("wrong number of cases")
    out, mutated = [], set()
    arrays = arrays or {}
    for rec in cases:
        if not isinstance(rec, dict) or not isinstance(rec.get("outputs", {}), dict):
            raise wire.ProtocolError("malformed case")
        error, names = rec.get("error"), rec.get("mutated", [])
        if error is not None and not isinstance(error, str) or not isinstance(names, list):
            raise wire.ProtocolError("malformed case")
        outputs = {}
        for k, v in rec.get("outputs", {}).items():
            if not isinstance(v, str) or v not in arrays:
                raise wire.ProtocolError("malformed case")
            outputs[str(k)[:100]] = np.asarray(arrays[v], dtype=float)
        mutated.update(str(n)[:100] for n in names[:20])
        # In-place changes are reported by the student process: advice only, never a verdict.
        out.append(Result(outputs=outputs, error=None if error is None else error[:300]))
    return out, sorted(mutated)


class Conversation:
    """The grader's side of the protocol: what may come next, and what it means."""

    def __init__(self, plan, cells, questions, cases, proc, outcome):
        self.cells, self.questions, self.cases = cells, questions, cases
        self.proc, self.outcome = proc, outcome
        self.state, self.index, self.q = "startup", 0, 0  # next cell index, next question index
        self.deadline = float("inf")  # of the current step, for writes to the process

    @property
    def where(self):
        """The step a failure now is charged to: ('cell', Cell), ('question', gid), or other."""
        if self.state == "cell":
            return ("cell", self.cells[self.index])
        if self.state == "question":
            return ("question", self.questions[self.q])
        return (self.state, None)

    def handle(self, header, arrays):
        """Advance on one frame: True when the process said it is done; ProtocolError if it
        does not fit the state."""
        event = header.get("event")
        if not isinstance(event, str):
            raise wire.ProtocolError("frame without event")
        # One case per transition: (state, event) and what must hold of the frame.
        match self.state, event:
            case "startup", "ready":
                self.state = "setup"
            case "setup", "setup_error":
                self.outcome.error = f"setup cells failed: {str(header.get('error'))[:300]}"
                return True
            case ("setup" | "between"), "cell_start" if (
                    header.get("index") == self.index and self.index < len(self.cells)):
                self.state = "cell"
            case "cell", "cell_done" if header.get("index") == self.index:
                error = header.get("error")
                if error is not None:
                    for gid in self.cells[self.index].questions:
                        self.outcome.cell_errors.setdefault(gid, str(error)[:300])
                self.index += 1
                self.state = "between"
            case ("setup" | "between"), "cells_done" if self.index == len(self.cells):
                self._send_cases()
                self.state = "questions"
            case ("questions" | "answered"), "question_start" if (
                    self.q < len(self.questions) and header.get("gid") == self.questions[self.q]):
                self.state = "question"
            case "question", "question" if header.get("gid") == self.questions[self.q]:
                gid = self.questions[self.q]
                results, mutated = _results(header, arrays, len(self.cases[gid]))
                self.outcome.results[gid] = results
                if mutated:
                    self.outcome.mutated[gid] = mutated
                self.q += 1
                self.state = "answered"
            case ("questions" | "answered"), "done" if self.q == len(self.questions):
                return True
            case _:
                raise wire.ProtocolError(f"unexpected {event[:40]!r} frame")
        return False

    def _send_cases(self):
        arrays = {}
        trees = {gid: [wire.pack(c.inputs, arrays) for c in self.cases[gid]]
                 for gid in self.questions}
        _write_within(self.proc.ctl.fileno(), _frame({"event": "cases", "cases": trees}, arrays),
                      self.deadline)


def _write_within(fd, data, deadline):
    """Write all of data before the deadline (a process that stops reading cannot stall us)."""
    os.set_blocking(fd, False)
    view = memoryview(data)
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the student process stopped reading")
        if select.select([], [fd], [], left)[1]:
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                pass


def _frame(header, arrays=None):
    """The bytes `wire.send` would write, for a buffered file object."""
    body = json.dumps(dict(header, npz=arrays is not None)).encode()
    data = wire._LEN.pack(len(body)) + body
    if arrays is not None:
        payload = wire.encode_arrays(arrays)
        data += wire._LEN.pack(len(payload)) + payload
    return data


# Set by the command line on SIGINT/SIGTERM: running student processes end within POLL seconds
# (and everything they started with them); a cancelled student gets no gradebook row.
CANCEL = threading.Event()
POLL = 0.25


def run_once(plan, cells, questions, cases, limits, deadline):
    """One process: returns (outcome, failure) with failure = (where, Failure) or None."""
    outcome = Outcome()
    tmp = tempfile.mkdtemp(prefix="course-grade-")
    work = os.path.join(tmp, "work")
    os.mkdir(work)
    marker = uuid.uuid4().hex
    started = time.time()
    job = {"setup": plan.setup,
           "cells": [{"source": c.source, "label": c.label} for c in cells],
           "notebook": plan.notebook, "questions": list(questions),
           "limits": {"memory_mb": limits.memory_mb, "output_bytes": limits.output_bytes,
                      "cpu_seconds": int(limits.total_timeout) + 5}}
    log = open(os.path.join(tmp, "output.log"), "w+b")  # noqa: SIM115 - read back below
    failure, finished, code, talk = None, False, None, None
    try:
        proc = launch(plan, env_for(marker, work), work, log)
        talk = Conversation(plan, cells, questions, cases, proc, outcome)
        try:
            step_end = time.monotonic() + max(limits.timeout, 10.0)
            _write_within(proc.ctl.fileno(), _frame(job), min(step_end, deadline))
            fd = proc.res.fileno()
            os.set_blocking(fd, False)
            reader = wire.Reader(fd)
            while not finished:
                try:
                    msg = reader.message()
                    if msg is None:
                        if reader.closed:
                            break
                        left = min(step_end, deadline) - time.monotonic()
                        if left <= 0:
                            failure = Failure(Kind.TIMEOUT)
                            break
                        if CANCEL.is_set():
                            failure = Failure(Kind.CANCELLED)
                            break
                        select.select([fd], [], [], min(left, POLL))
                        reader.feed()
                        continue
                    before = (talk.state, talk.index, talk.q)
                    talk.deadline = min(step_end, deadline)
                    finished = talk.handle(*msg)
                    if (talk.state, talk.index, talk.q) != before:  # progress, not a frame
                        step_end = time.monotonic() + limits.timeout
                except wire.ProtocolError:
                    failure = Failure(Kind.PROTOCOL)
                    break
                except TimeoutError:
                    failure = Failure(Kind.TIMEOUT)
                    break
        except (BrokenPipeError, OSError):
            pass
        finally:
            # A process that closed its channel has exited (or is exiting): wait for its exit
            # code as for any other; only one that hit a timeout or broke the protocol may hang.
            code = kill_all(proc, marker, started, failed=failure is not None)
    finally:
        size, tail = _tail(log)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
    if finished:
        return outcome, None
    if CANCEL.is_set():  # stopped by the grader, whatever stage the process was in
        return outcome, (("cancelled", None), Failure(Kind.CANCELLED))
    where = talk.where if talk is not None else ("startup", None)
    if where[0] in ("startup", "setup"):  # no student code ran yet: our problem, not theirs
        what = failure.text if failure else "no answer"
        outcome.error = f"grading harness failed before student code ({what}): {tail[-500:]}"
        return outcome, None
    if failure is None:
        failure = _death(code, size, tail, limits)
    return outcome, (where, failure)


def _death(code, size, tail, limits):
    """Name why a student process ended early."""
    if code == -getattr(signal, "SIGXFSZ", 25) or size >= limits.output_bytes:
        return Failure(Kind.OUTPUT)
    if "MemoryError" in tail or "Cannot allocate memory" in tail or "bad_alloc" in tail:
        return Failure(Kind.MEMORY)
    if code is not None and code < 0:
        try:
            return Failure(Kind.CRASH, signal.Signals(-code).name)
        except ValueError:
            return Failure(Kind.CRASH)
    return Failure(Kind.CRASH) if code is None else Failure(Kind.CRASH, f"exit code {code}")


def run_plan(plan, cases, limits, submission_deadline=float("inf")):
    """Run a plan to the end, restarting after failures; every question gets results or a status.

    cases: grade_id -> [Case], made in the grader (hidden seeds, references) and sent as data.
    """
    outcome = Outcome()
    cells, todo = list(plan.cells), list(plan.questions)
    notebook_deadline = time.monotonic() + limits.total_timeout
    deadline = min(notebook_deadline, submission_deadline)
    while todo:
        if CANCEL.is_set():
            for gid in todo:
                outcome.failures[gid] = Failure(Kind.CANCELLED)
            break
        if time.monotonic() >= deadline:
            kind = Kind.NOTEBOOK_TIMEOUT if notebook_deadline <= submission_deadline \
                else Kind.SUBMISSION_TIMEOUT
            for gid in todo:
                outcome.failures[gid] = Failure(kind)
            break
        part, failure = run_once(plan, cells, todo, cases, limits, deadline)
        outcome.results.update(part.results)
        outcome.mutated.update(part.mutated)
        for gid, err in part.cell_errors.items():
            outcome.cell_errors.setdefault(gid, err)
        todo = [g for g in todo if g not in part.results]
        if part.error:
            outcome.error = part.error
            break
        if failure is None:
            break
        (kind, item), what = failure
        if kind == "cell":  # drop the cell, charge its questions, rerun the rest without it
            cells = [c for c in cells if c is not item]
            hit = [g for g in item.questions if g in todo]
            what = Failure(what.kind, what.detail, cell=item.label)
        elif kind == "question":
            hit = [item]
        else:  # died outside any student step: charge every question still open
            hit = list(todo)
        for gid in hit:
            outcome.failures[gid] = what
        todo = [g for g in todo if g not in hit]
        if not hit and kind != "cell":  # a cell of another group's questions: rerun without it
            break
    return outcome
