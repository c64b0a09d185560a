"""What the grader writes: the CSV gradebook, per-student feedback, and a console score table."""

import csv
import io
import os
import threading
from pathlib import Path

from course.grade.text import block, csv_cell, file_name, inline, printable, status


def _fmt(x):
    return f"{x:g}"


def key(student):
    """How a student id appears in the gradebook (inert in a terminal and a spreadsheet)."""
    return csv_cell(student)


class GradeBook:
    """DIR/grades.csv, one row per student written in one write() and fsynced.

    A row is on disk whole or not at all as far as --resume is concerned: a last row cut short
    (no line end, or the wrong number of cells) is dropped and that student graded again.
    """

    def __init__(self, out_dir, questions, resume=False):
        self.path = Path(out_dir) / "grades.csv"
        self.columns = ["student", "status"] + [q.column for q in questions] + \
            ["total", "max_total", "review"]  # review: answers flagged for a human (review.py)
        self.lock = threading.Lock()
        self.done = set()
        self.torn = None  # the student whose cut-off row --resume dropped, if any
        if resume and self.path.exists() and self.path.stat().st_size:
            keep = self._read_done()
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            os.ftruncate(self.fd, keep)
            os.fsync(self.fd)
        else:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND,
                              0o644)
            self._write(self.columns)

    def _read_done(self):
        """Read who is done; the byte length of the complete rows to keep."""
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1  # a row without its line end was cut in the middle
        rows, ends = [], []
        for line in data[:keep].splitlines(keepends=True):
            rows.append(next(csv.reader([line.decode("utf-8", "replace")]), []))
            ends.append((ends[-1] if ends else 0) + len(line))
        if not rows or rows[0] != self.columns:
            raise SystemExit(f"{self.path} has other columns than this course's questions; "
                             "grade into a new --out folder or drop --resume")
        if len(rows) > 1 and len(rows[-1]) != len(self.columns):  # glued or cut: not a row
            rows.pop()
            ends.pop()
            keep = ends[-1]
        if keep < len(data):
            torn = data[keep:].decode("utf-8", "replace")
            self.torn = next(csv.reader([torn.splitlines()[0] if torn.strip() else ""]), [""])
            self.torn = (self.torn or [""])[0]
        self.done = {r[0] for r in rows[1:] if r}
        return keep

    def _write(self, cells):
        buf = io.StringIO()
        csv.writer(buf).writerow(cells)
        data = buf.getvalue().encode()
        with self.lock:
            n = os.write(self.fd, data)  # one write of the whole row (O_APPEND: at the end)
            if n != len(data):  # a full disk: never leave half a row behind
                os.ftruncate(self.fd, os.fstat(self.fd).st_size - n)
                raise OSError(f"could not write a whole row to {self.path}")
            os.fsync(self.fd)

    def add(self, grade):
        """Append one student's row and put it on disk at once."""
        cells = {q.question.column: "" if q.points is None else _fmt(q.points)
                 for q in grade.graded}
        row = [key(grade.student), csv_cell(status(grade.status))] + \
            [cells.get(c, "") for c in self.columns[2:-3]] + \
            [_fmt(grade.total), _fmt(grade.max_total), csv_cell(status("; ".join(
                f"{q.question.column} {q.flag}" for q in grade.graded if q.flag)))]
        self._write(row)
        self.done.add(row[0])

    def is_done(self, student):
        return key(student) in self.done

    def close(self):
        os.close(self.fd)


def safe_name(student):
    """A file name for a student id, unique per id (two ids never share a feedback file)."""
    return file_name(student)


def _verdict(label, v):
    """One case line; an exception's text is the student's, so it is quoted, never rendered."""
    if v.passed:
        return [f"- ✓ {label}"]
    if v.mistake == "exception":
        return [f"- ✗ {label}: raised an error:", "", block(v.message.removeprefix("raised ")), ""]
    return [f"- ✗ {label}: {v.message}"]


def feedback(grade):
    """Markdown feedback: per question the points, what was checked, and what went wrong."""
    lines = [f"# Feedback for {inline(grade.student)}", "",
             f"Auto-graded total: **{_fmt(grade.total)} / {_fmt(grade.max_total)}**"
             f" (status: {inline(grade.status, limit=None)})", ""]
    if any(q.question.manual for q in grade.graded):
        lines += ["Written answers (\"Think!\") are graded by hand and are not in this total.", ""]
    lines += [f"- {n}" for n in grade.notes]
    for nb in grade.notebooks:
        lines += ["", f"## {nb.notebook}" + (f" ({inline(nb.file)})" if nb.file else ""), ""]
        lines += [f"- **{printable(s)}**" for s in nb.status]
        for d in nb.details:
            lines += ["", block(d), ""]
        for g in nb.questions:
            q = g.question
            if q.manual:
                unit = "point" if q.points == 1 else "points"
                lines += ["", f"### {q.grade_id}: graded by hand ({_fmt(q.points)} {unit})", ""]
                if q.prompt:
                    lines += [f"Question: {q.prompt}", ""]
                lines += [block(g.written) if g.written else "(no answer written)"]
                continue
            lines += ["", f"### {q.grade_id}: {_fmt(g.points)} / {_fmt(q.points)} points", "",
                      f"Functions: {', '.join(f'`{f}`' for f in q.functions)}. "
                      f"Checked: {q.checks}.", ""]
            if g.status:
                lines.append(f"- **{g.status}** (questions before and after were still graded)")
            lines += [f"- {n}" for n in g.notes]
            if g.raised:
                lines += ["- your answer cell raised an error:", "", block(g.raised), ""]
            if g.flag:
                lines.append(f"- for the instructor to review: the answer {g.flag}")
            for label, v in g.verdicts:
                lines += _verdict(label, v)
    return "\n".join(lines) + "\n"


def table(grade):
    """A plain-text score table for a student grading their own work."""
    rows = []
    for nb in grade.notebooks:
        rows.append((nb.notebook + (f" ({printable(nb.file, limit=80)})" if nb.file else ""),
                     "", ""))
        for s in nb.status:
            rows.append(("  ! " + printable(s), "", ""))
        for g in nb.questions:
            q = g.question
            if q.manual:
                rows.append((f"  {q.grade_id}", f"- / {_fmt(q.points)}", "graded by hand"))
                continue
            passed = sum(v.passed for _, v in g.verdicts)
            if g.status:
                why = g.status
            elif not g.verdicts:
                why = "not graded"
            elif passed == len(g.verdicts):
                why = f"all {passed} hidden cases pass"
            else:
                first = next(v for _, v in g.verdicts if not v.passed)
                why = (f"{passed}/{len(g.verdicts)} cases pass: "
                       f"{printable(first.message, limit=200)}")
            rows.append((f"  {q.grade_id} ({', '.join(q.functions)})",
                         f"{_fmt(g.points)} / {_fmt(q.points)}", why))
    width = max([len(r[0]) for r in rows] + [10])
    out = [f"{a:<{width}}  {b:>10}  {c}".rstrip() for a, b, c in rows]
    total = _fmt(grade.total) + " / " + _fmt(grade.max_total)
    out.append(f"{'total (auto-graded)':<{width}}  {total:>10}  status: {status(grade.status)}")
    return "\n".join(out)
