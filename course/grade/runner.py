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
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from course.grade import wire
from course.tasks.base import Result

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is pinned, but the grader works without it
    psutil = None


@dataclass(frozen=True)
class Limits:
    """Per-step and whole-notebook time, memory and output caps."""

    timeout: float = 30.0  # per question, per answer cell, and for start-up
    total_timeout: float = 300.0  # one notebook, restarts included
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


def _env(marker, work):
    """A minimal environment: no PYTHON* variables, one BLAS thread, a headless backend."""
    env = {"PATH": os.defpath, "HOME": work, "TMPDIR": work, "LANG": "C.UTF-8",
           "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "COURSE_GRADE_RUN": marker}
    try:  # reuse the font cache instead of rebuilding it in every scratch HOME
        import matplotlib
        env["MPLCONFIGDIR"] = matplotlib.get_cachedir()
    except Exception:  # noqa: BLE001
        pass
    return env


class Spawned:
    """A student process started from scratch: `python -I -m course.grade.harness`."""

    def __init__(self, env, work, log):
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "course.grade.harness"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=log, cwd=work, env=env, start_new_session=True,
            close_fds=True)
        self.pid, self.ctl, self.res = self.proc.pid, self.proc.stdin, self.proc.stdout

    def wait(self):
        return self.proc.wait()

    def close(self):
        self.ctl.close()
        self.res.close()


class Forked:
    """A student process forked by a zygote; its exit code comes back from the zygote."""

    def __init__(self, zygote, pid, ctl, res):
        self.zygote, self.pid = zygote, pid
        self.ctl, self.res = os.fdopen(ctl, "wb", buffering=0), os.fdopen(res, "rb", buffering=0)

    def wait(self):
        try:
            return self.zygote.exit_code(self.pid)
        except (OSError, ValueError):  # the zygote died or hung: never reuse it
            self.zygote.broken = True
            raise

    def close(self):
        self.ctl.close()
        self.res.close()


class Zygote:
    """A warm process that imported numpy, matplotlib and the tasks once and forks per notebook.

    A fork of a process that never ran student code is as fresh as a new interpreter, without
    paying ~0.5 s of imports for every student notebook.
    """

    def __init__(self, registry, path):
        self.broken = False
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.home = tempfile.mkdtemp(prefix="course-grade-zygote-")
        env = _env("", self.home)
        del env["COURSE_GRADE_RUN"]
        self.proc = subprocess.Popen([sys.executable, "-I", "-m", "course.grade.harness",
                                      "--zygote"], stdin=theirs, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, cwd=self.home, env=env,
                                     start_new_session=True, close_fds=True)
        theirs.close()
        self.sock.settimeout(120)
        self.sock.send(json.dumps({"registry": registry, "path": path}).encode())
        if not json.loads(self.sock.recv(1 << 16) or b"{}").get("ready"):
            raise OSError("zygote did not start")

    def start(self, env, work, log):
        ctl_r, ctl_w = os.pipe()
        res_r, res_w = os.pipe()
        try:
            socket.send_fds(self.sock, [json.dumps({"env": env, "work": work}).encode()],
                            [ctl_r, res_w, log.fileno()])
            reply = json.loads(self.sock.recv(1 << 16) or b"{}")
        except BaseException:
            for fd in (ctl_w, res_r):
                os.close(fd)
            raise
        finally:
            os.close(ctl_r)
            os.close(res_w)
        if "pid" not in reply:
            os.close(ctl_w)
            os.close(res_r)
            raise OSError("zygote did not fork")
        return Forked(self, reply["pid"], ctl_w, res_r)

    def exit_code(self, pid):
        reply = json.loads(self.sock.recv(1 << 16) or b"{}")
        if reply.get("pid") != pid:
            raise OSError("zygote lost track of its child")
        return reply["code"]

    def close(self):
        self.sock.close()
        try:
            self.proc.wait(timeout=2 if self.broken else 10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


FORK = sys.platform.startswith("linux") and hasattr(socket, "send_fds")
_zygotes, _zygote_lock = {}, threading.Lock()


def _launch(plan, env, work, log):
    """A student process: forked from this thread's zygote where possible, else spawned."""
    if not FORK:
        return Spawned(env, work, log)
    key = (threading.get_ident(), plan.registry, tuple(plan.path))
    for _ in range(2):
        with _zygote_lock:
            zygote = _zygotes.get(key)
            if zygote is not None and zygote.broken:
                del _zygotes[key]
                zygote.close()
                zygote = None
        try:
            if zygote is None:
                zygote = Zygote(plan.registry, list(plan.path))
                with _zygote_lock:
                    _zygotes[key] = zygote
            return zygote.start(env, work, log)
        except (OSError, ValueError):
            with _zygote_lock:
                _zygotes.pop(key, None)
            if zygote is not None:
                zygote.close()
    return Spawned(env, work, log)


def shutdown():
    """Stop every zygote (the grader calls this when the batch is done)."""
    with _zygote_lock:
        zygotes = list(_zygotes.values())
        _zygotes.clear()
    for z in zygotes:
        z.close()


def _kill_all(proc, marker, started):
    """Kill the process group, every descendant, and anything carrying our marker."""
    victims = []
    if psutil is not None:
        try:
            victims = psutil.Process(proc.pid).children(recursive=True)
        except psutil.Error:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if psutil is not None:  # children that left the group (setsid) or were orphaned
        for p in psutil.process_iter(["create_time"]):
            try:
                if p.pid != os.getpid() and p.info["create_time"] >= started - 1 and \
                        p.environ().get("COURSE_GRADE_RUN") == marker:
                    victims.append(p)
            except psutil.Error:
                continue
        for p in victims:
            try:
                p.kill()
            except psutil.Error:
                pass
    proc.close()
    try:
        return proc.wait()
    except (OSError, ValueError):  # the zygote died with its child: start a new one next time
        return None


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
           "questions": list(questions),
           "limits": {"memory_mb": limits.memory_mb, "output_bytes": limits.output_bytes,
                      "cpu_seconds": int(limits.total_timeout) + 5}}
    with open(log_path, "wb") as log:
        proc = _launch(plan, _env(marker, work), work, log)
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
        code = _kill_all(proc, marker, started)
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


def run_plan(plan, seeds, limits):
    """Run a plan to the end, restarting after failures; every question gets results or a status."""
    outcome = Outcome()
    cells, todo = list(plan.cells), list(plan.questions)
    deadline = time.monotonic() + limits.total_timeout
    while todo:
        if time.monotonic() >= deadline:
            for gid in todo:
                outcome.failures[gid] = "timeout (whole notebook)"
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
