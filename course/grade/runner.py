"""Run one student notebook's plan in fresh, limited Python processes and collect raw results.

Each run is a fresh process: forked from a warm "zygote" (a process that imported numpy,
matplotlib and the tasks once and never runs student code) on Linux, else a new interpreter.
A failure (timeout, death, memory, output) is pinned on the cell or question that was running;
that question is marked and a fresh process grades the rest, until every question has an answer
or the whole-submission deadline passes.
"""

import json
import os
import select
import shutil
import signal
import tempfile
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from course.grade import wire
from course.grade.launch import env_for, kill_all, launch
from course.tasks.base import Result


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
    failures: dict = field(default_factory=dict)  # gid -> "timeout", "kernel died", ...
    cell_errors: dict = field(default_factory=dict)  # gid -> error text of its answer cell
    error: str | None = None  # a failure that is not the student's (setup cells broke)


def _tail(path, n=4096):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return size, f.read().decode(errors="replace")
    except OSError:
        return 0, ""


def _results(header, arrays):
    """Results from one question message; anything malformed is an error, not a crash."""
    out = []
    arrays = arrays or {}
    for rec in header.get("cases", []):
        try:
            outputs = {str(k): np.asarray(arrays[v], dtype=float)
                       for k, v in rec.get("outputs", {}).items()}
            error = rec.get("error")
            out.append(Result(outputs=outputs, mutated=tuple(map(str, rec.get("mutated", []))),
                              error=None if error is None else str(error)[:300]))
        except (KeyError, TypeError, ValueError, AttributeError):
            out.append(Result(error="ValueError: malformed result"))
    return out


def _handle(msg, where, cells, questions, seeds, proc, outcome):
    """Act on one message from the student process: (where it is now, finished?)."""
    header, arrays = msg
    event = header.get("event")
    if event == "setup_error":
        outcome.error = f"setup cells failed: {header.get('error')}"
        return where, True
    if event == "ready":
        return ("setup", None), False
    if event == "cell_start":
        return ("cell", cells[header["index"]]), False
    if event == "cell_done":
        error = header.get("error")
        if error:
            for gid in cells[header["index"]].questions:
                outcome.cell_errors.setdefault(gid, str(error)[:300])
        return ("between", None), False
    if event == "cells_done":
        proc.ctl.write((json.dumps({g: seeds[g] for g in questions}) + "\n").encode())
        proc.ctl.flush()
        return where, False
    if event == "question_start":
        return ("question", str(header["gid"])), False
    if event == "question" and header.get("gid") in questions:
        outcome.results[header["gid"]] = _results(header, arrays)
        return ("between", None), False
    return where, event == "done"


def run_once(plan, cells, questions, seeds, limits, deadline):
    """One process: returns (outcome, failure) with failure = (where, what) or None."""
    outcome = Outcome()
    tmp = tempfile.mkdtemp(prefix="course-grade-")
    work = os.path.join(tmp, "work")
    os.mkdir(work)
    log_path = os.path.join(tmp, "output.log")
    marker = uuid.uuid4().hex
    started = time.time()
    job = {"setup": plan.setup, "registry": plan.registry, "path": plan.path, "scratch": tmp,
           "cells": [{"source": c.source, "label": c.label} for c in cells],
           "notebook": plan.notebook, "questions": list(questions),
           "limits": {"memory_mb": limits.memory_mb, "output_bytes": limits.output_bytes,
                      "cpu_seconds": int(limits.total_timeout) + 5}}
    with open(log_path, "wb") as log:
        proc = launch(plan, env_for(marker, work), work, log)
    where, what, finished, code = ("startup", None), None, False, None
    try:
        proc.ctl.write((json.dumps(job) + "\n").encode())
        proc.ctl.flush()
        fd = proc.res.fileno()
        os.set_blocking(fd, False)
        reader = wire.Reader(fd)
        step_end = time.monotonic() + max(limits.timeout, 10.0)
        while not finished:
            try:
                msg = reader.message()
            except ValueError:
                what = "kernel died (malformed result)"
                break
            if msg is None:
                if reader.closed:
                    break
                left = min(step_end, deadline) - time.monotonic()
                if left <= 0:
                    what = "timeout"
                    break
                select.select([fd], [], [], left)
                reader.feed()
                continue
            step_end = time.monotonic() + limits.timeout
            try:
                where, finished = _handle(msg, where, cells, questions, seeds, proc, outcome)
            except (KeyError, IndexError, TypeError, AttributeError):  # a forged frame
                what = "kernel died (malformed result)"
                break
    except (BrokenPipeError, OSError):
        pass
    finally:
        code = kill_all(proc, marker, started)
        size, tail = _tail(log_path)
        shutil.rmtree(tmp, ignore_errors=True)
    if finished:
        return outcome, None
    if where[0] in ("startup", "setup"):  # no student code ran yet: our problem, not theirs
        outcome.error = f"grading harness failed before student code ({what}): {tail[-500:]}"
        return outcome, None
    if what is None:
        what = _death(code, size, tail, limits)
    return outcome, (where, what)


def _death(code, size, tail, limits):
    """Name why a student process ended early."""
    if code == -getattr(signal, "SIGXFSZ", 25) or size >= limits.output_bytes:
        return "output limit"
    if "MemoryError" in tail or "Cannot allocate memory" in tail or "bad_alloc" in tail:
        return "memory limit"
    if code is not None and code < 0:
        try:
            return f"kernel died ({signal.Signals(-code).name})"
        except ValueError:
            return "kernel died"
    return "kernel died" if code is None else f"kernel died (exit code {code})"


def run_plan(plan, seeds, limits, submission_deadline=float("inf")):
    """Run a plan to the end, restarting after failures; every question gets results or a status."""
    outcome = Outcome()
    cells, todo = list(plan.cells), list(plan.questions)
    notebook_deadline = time.monotonic() + limits.total_timeout
    deadline = min(notebook_deadline, submission_deadline)
    while todo:
        if time.monotonic() >= deadline:
            whole = "notebook" if notebook_deadline <= submission_deadline else "submission"
            for gid in todo:
                outcome.failures[gid] = f"timeout (whole {whole})"
            break
        part, failure = run_once(plan, cells, todo, seeds, limits, deadline)
        outcome.results.update(part.results)
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
            what = f"{what} in answer cell {item.label}"
        elif kind == "question":
            hit = [item]
        else:  # died outside any student step: charge every question still open
            hit = list(todo)
        for gid in hit:
            outcome.failures[gid] = what
        todo = [g for g in todo if g not in hit]
        if not hit:
            break
    return outcome
