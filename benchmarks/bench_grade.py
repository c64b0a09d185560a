"""Benchmark the autograder: grade N copies of a full-marks submission (every solution notebook).

    python benchmarks/bench_grade.py [--students 100] [--jobs 2]

Prints seconds per student and the projected time for 100 students (target: <= 180 s on
2 cores). Not a timed test: the figures depend on the machine and its load.
"""

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_S_PER_100 = 180.0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=100)
    p.add_argument("--jobs", type=int, default=2)
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
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "course.grade", *sorted((tmp / "subs").iterdir()),
                        "--out", str(tmp / "out"), "--jobs", str(args.jobs),
                        "--notebooks", notebooks], check=True, cwd=ROOT,
                       stderr=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        with open(tmp / "out" / "grades.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        full = sum(r["status"] == "ok" and r["total"] == r["max_total"] for r in rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    per = elapsed / args.students
    print(f"graded {args.students} students x {len(solutions)} notebooks with --jobs "
          f"{args.jobs} in {elapsed:.1f} s: {per:.2f} s per student, "
          f"{per * 100:.0f} s per 100 students (target <= {TARGET_S_PER_100:.0f} s); "
          f"{full}/{len(rows)} rows with full marks")
    return 0 if full == len(rows) == args.students else 1


if __name__ == "__main__":
    sys.exit(main())
