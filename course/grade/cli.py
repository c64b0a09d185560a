"""Command line: grade submissions in parallel, write the gradebook and feedback, show progress.

    python -m course.grade SUBMISSION... --out DIR [--jobs N] [--timeout SECONDS] [--resume]
                                         [--shard K/N] [--secret-file PATH]
    python -m course.grade merge OUT1 OUT2 ... --out DIR    # join the shards' gradebooks
    python -m course.grade --list
    python -m course.grade notebooks/02_forward_pass.ipynb      # a student checks their work
"""

import argparse
import hashlib
import os
import secrets
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from course.grade import fingerprint, report
from course.grade.grading import StudentGrade, grade_submission
from course.grade.questions import Course
from course.grade.sandbox import bwrap, cgroup, launch, runner
from course.grade.sandbox.failures import Kind
from course.grade.sandbox.runner import Limits
from course.grade.text import printable, status
from course.notebook import NotInRepository

# The sandbox limits an instructor may set: flag, Limits field, unit (in the field's units), help.
LIMIT_FLAGS = (
    ("--timeout", "timeout", 1, "seconds per question (and per answer cell)"),
    ("--total-timeout", "total_timeout", 1, "seconds per notebook, restarts included"),
    ("--submission-timeout", "submission_timeout", 1, "seconds for all one student handed in"),
    ("--memory", "memory_mb", 1, "MB a student process may allocate beyond Python + numpy"),
    ("--output-limit", "output_bytes", 1024, "KB of output before a student process is stopped"),
    ("--processes", "processes", 1, "processes and threads per sandbox"),
)


def parse(argv):
    # allow_abbrev=False: a student folder `--no-s` is never taken for --no-sandbox
    p = argparse.ArgumentParser(prog="python -m course.grade", allow_abbrev=False,
                                description="Grade student notebooks against hidden cases.")
    p.add_argument("submissions", nargs="*", type=Path,
                   help="a student's folder (id = folder name) or one .ipynb (id = file stem)")
    p.add_argument("--out", type=Path, help="write grades.csv and feedback/ here; "
                   "without it, print a score table")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel students")
    for flag, field, unit, text in LIMIT_FLAGS:
        kind = type(getattr(Limits, field))
        p.add_argument(flag, dest=field, type=kind, default=getattr(Limits, field) // unit,
                       metavar=text.split()[0].upper(), help=text)  # SECONDS, MB or KB
    p.add_argument("--resume", action="store_true", help="skip students already in grades.csv")
    p.add_argument("--list", action="store_true", help="list every gradable question and exit")
    p.add_argument("--notebooks", help="comma-separated notebook ids to grade (default: all)")
    p.add_argument("--secret", help=argparse.SUPPRESS)  # refused: visible in /proc
    p.add_argument("--secret-file", type=Path,
                   help="file holding the secret the hidden seeds derive from (or set "
                   "COURSE_GRADE_SECRET; default: random, kept in DIR/.secret)")
    p.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                   help="grade only shard K of N (1 <= K <= N), split by student id; "
                   "join the outputs with `python -m course.grade merge`")
    p.add_argument("--no-fork", action="store_true",
                   help="start every student process from scratch instead of forking a warm one")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student code without bubblewrap: for developing the grader only, "
                        "never for grades that count; every status then says 'unconfined'")
    p.add_argument("--solutions", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--registry", default="course.tasks", help=argparse.SUPPRESS)
    p.add_argument("--path", action="append", default=[], help=argparse.SUPPRESS)
    return p.parse_args(argv)


def list_questions(course):
    """Print notebook, question, points, kind and functions for every question."""
    rows = [("notebook", "question", "points", "graded", "functions")]
    for q in course.questions:
        rows.append((q.notebook, q.grade_id, f"{q.points:g}", "by hand" if q.manual else "auto",
                     "(written answer)" if q.manual else ", ".join(q.functions)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(f"{c:<{w}}" for c, w in zip(r, widths, strict=False)) + "  " + r[4])
    auto = sum(q.points for q in course.questions if not q.manual)
    hand = sum(q.points for q in course.questions if q.manual)
    print(f"\n{len(course.questions)} questions: {auto:g} points auto-graded, "
          f"{hand:g} points graded by hand.")


def _shard(text):
    """K/N as (K, N) with 1 <= K <= N."""
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError("give the shard as K/N, e.g. 3/8") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError("the shard K/N needs 1 <= K <= N")
    return k, n


def in_shard(student, shard):
    """Whether a student id falls in shard (K, N): a stable hash of the id, modulo N."""
    if shard is None:
        return True
    k, n = shard
    digest = hashlib.sha256(student.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % n == k - 1


def _given_secret(args):
    """The secret from COURSE_GRADE_SECRET or --secret-file, or None."""
    if args.secret_file is not None:
        return args.secret_file.read_text().strip() or None
    return os.environ.get("COURSE_GRADE_SECRET") or None


def _secret(args):
    """(secret, whether it is new and must be kept in DIR/.secret): given, kept, or random."""
    given = _given_secret(args)
    if given:
        return given, False
    path = None if args.out is None else args.out / ".secret"
    if args.resume and path is not None and path.exists():
        return path.read_text().strip(), False
    return secrets.token_hex(16), path is not None


def _keep_secret(out, secret):
    """DIR/.secret, readable by its owner only from the first byte."""
    path = out / ".secret"
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")


def _grade_one(course, target, secret, limits, only):
    try:
        grade = grade_submission(course, target, secret, limits, only)
    except Exception as exc:  # noqa: BLE001 - a grader bug must not stop the batch
        student = target.name if target.is_dir() else target.stem
        print(f"grader error for {printable(student)}: {printable(repr(exc), limit=500)}",
              file=sys.stderr)
        grade = StudentGrade(student, [], f"grader error ({type(exc).__name__})")
    if not launch.CONFINED:
        grade.status = f"{grade.status} (unconfined)"
    return grade


def refuse_option_like(argv):
    """An error message if an argument is an option and also a file or folder here (a student
    folder named `--notebooks=x` under a bare `*`), else None. After `--` nothing is an option."""
    for arg in argv[:argv.index("--") + 1] if "--" in argv else argv:
        if arg.startswith("-") and os.path.lexists(arg):
            return (f"refusing {printable(arg, limit=80)!r}: it is an option and also a file or "
                    "folder here (a submission named like an option?); give submissions after "
                    "`--` or as ./NAME")
    return None


def refuse_out_in_submission(out, submissions):
    """An error message if the output folder is a file, a submission or inside one, else None."""
    if out.exists() and not out.is_dir():
        return f"refusing --out {printable(str(out), limit=200)}: it is a file, not a folder"
    where = out.resolve()
    for target in submissions:
        t = target.resolve()
        if where == t or t in where.parents:
            return (f"refusing --out {printable(str(out), limit=200)}: it is inside the "
                    f"submission {printable(str(target), limit=200)}, so the grader would "
                    "write into what it grades; choose an output folder outside the submissions")
    return None


def _refuse_cli_secret(args):
    """An error message if the secret would be visible on the command line, else None."""
    if args.secret is None:
        return None
    return ("refusing --secret: a command line is readable by every process (/proc/PID/cmdline); "
            "set COURSE_GRADE_SECRET or pass --secret-file PATH")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    refused = refuse_option_like(argv)
    if refused:
        print(refused, file=sys.stderr)
        return 2
    if argv[:1] == ["merge"]:
        from course.grade.merge import main as merge_main
        return merge_main(argv[1:])
    args = parse(argv)
    refused = _refuse_cli_secret(args) or (
        args.out is not None and refuse_out_in_submission(args.out, args.submissions))
    if refused:
        print(refused, file=sys.stderr)
        return 2
    if args.shard is not None and not _given_secret(args):
        print("--shard needs one secret for all shards: set COURSE_GRADE_SECRET or pass "
              "--secret-file PATH", file=sys.stderr)
        return 2
    where = {} if args.solutions is None else {"solutions": args.solutions}
    try:
        course = Course(registry=args.registry, path=[str(p.resolve()) for p in args.path],
                        **where)
    except NotInRepository as err:  # installed without its notebooks: stop, never grade 0s
        print(f"course.grade: {err}", file=sys.stderr)
        return 2
    if args.list:
        list_questions(course)
        return 0
    if not args.submissions:
        print("nothing to grade: give submission folders or .ipynb files (or --list)",
              file=sys.stderr)
        return 2
    limits = Limits(**{field: getattr(args, field) * unit for _, field, unit, _ in LIMIT_FLAGS})
    only = set(args.notebooks.split(",")) if args.notebooks else None
    launch.FORK = launch.FORK and not args.no_fork
    launch.CONFINED = not args.no_sandbox
    why = None if args.no_sandbox else bwrap.probe()
    if why:
        print(f"refusing to grade: {why}. Install bubblewrap and libseccomp (make "
              "sandbox-deps); --no-sandbox is for developing the grader only.", file=sys.stderr)
        return 2
    if args.no_sandbox:
        print("warning: --no-sandbox: student code runs unconfined and can read the secret and "
              "change the gradebook; never use it for grades that count", file=sys.stderr)
    elif os.geteuid() == 0 and cgroup.available() is None:
        print("warning: running as root without a pids cgroup: the kernel does not apply the "
              "process limit (--processes) to root; run the grader as an ordinary user",
              file=sys.stderr)
    if args.out is None:  # a student grading their own notebook(s)
        for target in args.submissions:
            print(report.table(_grade_one(course, target, _secret(args)[0], limits, only)))
        launch.shutdown()
        return 0

    try:
        return grade_batch(args, course, limits, only)
    except report.Refused as err:
        print(err, file=sys.stderr)
        return 2


def _targets(args, book):
    """The submissions still to grade: not done, not twice, and in this shard."""
    targets, seen = [], set()
    for t in args.submissions:
        student = t.name if t.is_dir() else t.stem
        if not in_shard(student, args.shard) or book.is_done(student):
            continue
        if report.key(student) in seen:
            print(f"skipping {printable(str(t))}: student id {printable(student)} appears twice",
                  file=sys.stderr)
            continue
        seen.add(report.key(student))
        targets.append(t)
    return targets


class _Stop:
    """SIGINT/SIGTERM: cancel the queued students and end the running ones (no row for them)."""

    def __init__(self):
        self.name, self.futures = None, []

    def __call__(self, signum, frame):
        if self.name is None:
            self.name = signal.Signals(signum).name
            runner.CANCEL.set()  # running student processes end within runner.POLL seconds
            for f in self.futures:
                f.cancel()
        else:  # os.write: a print here could re-enter a print the main thread is in
            os.write(2, b"\nalready stopping: ending the running students\n")

    def install(self):
        old = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        return lambda: [signal.signal(s, h) for s, h in old.items()]


def _was_cancelled(grade):
    """Whether a signal cut this student's grading short (then its row would be wrong): a step
    ended as cancelled, or the grading broke while the processes were being ended."""
    return any(word in str(grade.status) for word in (Kind.CANCELLED.value, "grader error"))


def _write_feedback(out, grade):
    """The student's feedback file, replaced whole (never half written)."""
    path = out / "feedback" / f"{report.safe_name(grade.student)}.md"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(report.feedback(grade))
    os.replace(tmp, path)


def _open_gradebook(args, course, columns):
    """(gradebook, secret) once the output folder is checked: a fresh run never overwrites
    graded rows, and --resume adds rows only to a gradebook of the same secret and course."""
    path = args.out / "grades.csv"
    rows = report.row_count(path)
    if rows and not args.resume:
        raise report.Refused(f"refusing to overwrite {printable(str(path), limit=200)}: it "
                             f"holds {rows} graded students; pass --resume to continue it, or "
                             "grade into a new --out")
    secret, new = _secret(args)
    current = fingerprint.make(course, columns, secret, args.shard)
    if rows and args.resume:
        why = fingerprint.mismatch(fingerprint.read(args.out), current, str(args.out),
                                   resume=True)
        if why:
            raise report.Refused(f"refusing --resume: {why}; grade into a new --out")
    if new:
        _keep_secret(args.out, secret)
    fingerprint.write(args.out, current)
    return report.GradeBook(args.out, columns, resume=args.resume), secret


def grade_batch(args, course, limits, only):
    """Grade every target into DIR/grades.csv and DIR/feedback/, stopping cleanly on a signal."""
    args.out.mkdir(parents=True, exist_ok=True)
    lock = report.OutputLock(args.out)
    try:
        return _grade_locked(args, course, limits, only)
    finally:
        lock.close()


def _grade_locked(args, course, limits, only):
    (args.out / "feedback").mkdir(exist_ok=True)
    columns = [q for q in course.questions if only is None or q.notebook in only]
    book, secret = _open_gradebook(args, course, columns)
    if book.torn is not None:
        print(f"regrading {printable(book.torn, limit=80)}: its row in {book.path} was cut off",
              file=sys.stderr)
    targets = _targets(args, book)
    start, done, tty = time.monotonic(), 0, sys.stderr.isatty()
    skipped = len(args.submissions) - len(targets)
    stop, interrupted = _Stop(), 0
    runner.CANCEL.clear()
    restore = stop.install() if threading.current_thread() is threading.main_thread() else None
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            stop.futures = [pool.submit(_grade_one, course, t, secret, limits, only)
                            for t in targets]
            if stop.name:  # a signal while queueing
                stop(signal.Signals[stop.name], None)
            for future in as_completed(stop.futures):
                if future.cancelled():
                    continue
                grade = future.result()
                if runner.CANCEL.is_set() and _was_cancelled(grade):
                    interrupted += 1  # --resume grades this student again, from scratch
                    continue
                _write_feedback(args.out, grade)
                book.add(grade)
                done += 1
                line = (f"[{done}/{len(targets)}] {printable(grade.student, limit=80)}: "
                        f"{grade.total:g}/{grade.max_total:g} {status(grade.status)} "
                        f"({time.monotonic() - start:.0f} s)")
                print(("\r\033[K" if tty else "") + line[:200], end="" if tty else "\n",
                      file=sys.stderr, flush=True)
    finally:
        if restore:
            restore()
        book.close()
        launch.shutdown()
    if stop.name:
        cancelled = sum(f.cancelled() for f in stop.futures)
        print(("\n" if tty else "") + f"stopped by {stop.name}: {done} students graded and "
              f"written to {book.path}, {interrupted} running students ended without a row, "
              f"{cancelled} queued students not started; run again with --resume to finish",
              file=sys.stderr)
        return 128 + signal.Signals[stop.name].value
    print(("\n" if tty else "") + f"graded {done} students in {time.monotonic() - start:.1f} s"
          + (f" ({skipped} skipped)" if skipped else "") + f"; wrote {book.path}",
          file=sys.stderr)
    return 0
