"""Benchmark the autograder: grade N copies of a full-marks submission (every solution notebook).

    python benchmarks/bench_grade.py [--students 100] [--jobs 2] [--no-sandbox]

Prints seconds per student (wall and CPU) and the projected time for 100 students with the
bubblewrap sandbox (target: <= 60 s on 2 cores), and what one sandbox (with its seccomp filter and
pids cgroup) costs per process (a sandboxed against a bare `python -c pass`). Not a timed test:
the figures depend on the machine and its load.
"""

import argparse
import csv
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S_PER_100 = 60.0
PROBES = 10


def sandbox_cost():
    """Seconds one bubblewrap sandbox (seccomp filter and pids cgroup included) adds to starting
    a process, or None without bwrap."""
    sys.path.insert(0, str(ROOT))
    from course.grade.sandbox import bwrap, cgroup
    if bwrap.probe() is not None:
        return None
    bare = [sys.executable, "-I", "-c", "pass"]
    here = ROOT / "course" / "grade" / "sandbox"
    times = {}
    for name in ("bare", "boxed"):
        start = time.perf_counter()
        for _ in range(PROBES):
            if name == "bare":
                subprocess.run(bare, check=True)
                continue
            group = cgroup.create(64)
            try:
                args, fds = bwrap.command(bare, here)
                subprocess.run(cgroup.wrap(group, args), check=True, pass_fds=fds)
                for fd in fds:
                    os.close(fd)
            finally:
                cgroup.remove(group)
        times[name] = (time.perf_counter() - start) / PROBES
    return times["boxed"] - times["bare"]


def _children_cpu():
    """CPU seconds (user + system) of every waited-for descendant: the grader, its sandboxes and
    their processes. Less disturbed than wall time on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=100)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--no-sandbox", action="store_true", help="grade unconfined, for comparison")
    args = p.parse_args(argv)
    solutions = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    if not solutions:
        print("no solution notebooks to grade")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="bench-grade-"))
    try:
        for i in range(args.students):
            folder = tmp / "subs" / f"student{i:03d}"
            folder.mkdir(parents=True)
            for path in solutions:
                shutil.copy(path, folder / path.name)
        notebooks = ",".join(path.stem for path in solutions)
        cpu_before = _children_cpu()
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "course.grade", *sorted((tmp / "subs").iterdir()),
                        "--out", str(tmp / "out"), "--jobs", str(args.jobs),
                        "--notebooks", notebooks, *(["--no-sandbox"] if args.no_sandbox else [])],
                       check=True, cwd=ROOT,
                       stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        cpu = _children_cpu() - cpu_before
        with open(tmp / "out" / "grades.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        ok = "ok (unconfined)" if args.no_sandbox else "ok"
        full = sum(r["status"] == ok and r["total"] == r["max_total"] for r in rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per = elapsed / args.students
    cost = sandbox_cost()
    where = "unconfined" if args.no_sandbox else "in the sandbox"
    print(f"graded {where} {args.students} students x {len(solutions)} notebooks with --jobs "
          f"{args.jobs} in {elapsed:.1f} s: {per:.2f} s per student "
          f"({cpu / args.students:.2f} CPU s per student, grader and sandboxes), "
          f"{per * 100:.0f} s per 100 students (target <= {TARGET_S_PER_100:.0f} s); "
          f"{full}/{len(rows)} rows with full marks; one bwrap sandbox costs "
          + (f"{cost * 1000:.0f} ms per process" if cost is not None else "nothing (no bwrap)"))
    return 0 if full == len(rows) == args.students else 1


if __name__ == "__main__":
    sys.exit(main())
