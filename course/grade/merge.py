"""Join the outputs of sharded grading runs into one gradebook.

    python -m course.grade merge OUT1 OUT2 ... --out DIR

Every shard must have the same columns (the same course and --notebooks), the same fingerprint
(secret and course, see course.grade.fingerprint), no student in two shards, and only whole
rows; DIR (not one of the shards, locked while merging) gets grades.csv, feedback/ and the
fingerprint.
"""

import argparse
import csv
import io
import os
import shutil
import sys
from pathlib import Path

from course.grade import fingerprint
from course.grade.report import OutputLock, Refused


def _rows(out):
    """(header, rows) of one shard's grades.csv; a cut-off last row is an error, not a row."""
    path = Path(out) / "grades.csv"
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        raise SystemExit(f"{path}: the last row is cut off; finish that shard with --resume")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    if not rows:
        raise SystemExit(f"{path}: empty")
    header, body = rows[0], [r for r in rows[1:] if r]
    for r in body:
        if len(r) != len(header):
            raise SystemExit(f"{path}: a row has {len(r)} cells, the header {len(header)}")
    return header, body


def merge(outs, dest):
    """Write dest/grades.csv and dest/feedback/ from the shard folders; the number of students.

    Every folder is locked first: a shard still being graded, or another merge into dest, is
    refused."""
    dest = Path(dest)
    if any(dest.resolve() == Path(o).resolve() for o in outs):
        raise SystemExit(f"refusing to merge into {dest}: it is one of the shards")
    dest.mkdir(parents=True, exist_ok=True)
    locks = []
    try:
        for folder in {Path(o).resolve(): o for o in [*outs, dest]}.values():
            locks.append(OutputLock(folder))
        return _merge_locked(outs, dest)
    except Refused as err:
        raise SystemExit(str(err)) from None
    finally:
        for lock in locks:
            lock.close()


def _merge_locked(outs, dest):
    header, rows, owner = None, [], {}
    for out in outs:
        h, body = _rows(out)
        if header is None:
            header = h
        elif h != header:
            raise SystemExit(f"{out}: other columns than {outs[0]} (same course and --notebooks "
                             "for every shard)")
        for r in body:
            if r[0] in owner:
                raise SystemExit(f"student {r[0]!r} is in both {owner[r[0]]} and {out}")
            owner[r[0]] = out
        rows += body
    prints = [fingerprint.read(o) for o in outs]
    for out, p in zip(outs, prints, strict=True):
        why = fingerprint.mismatch(p, prints[0] or {}, str(out), str(outs[0]))
        if why:
            raise SystemExit(f"refusing to merge: {why}")
    return _write(dest, header, rows, outs, dict(prints[0], shard=None))


def _write(dest, header, rows, outs, print_):
    """Write the merged feedback, fingerprint and gradebook into dest."""
    (dest / "feedback").mkdir(exist_ok=True)
    names = {}
    for out in outs:
        for f in sorted((Path(out) / "feedback").glob("*.md")):
            if f.name in names and f.read_bytes() != names[f.name].read_bytes():
                raise SystemExit(f"feedback {f.name} differs in {names[f.name].parent.parent} "
                                 f"and {out}")
            names[f.name] = f
    for name, f in names.items():
        shutil.copyfile(f, dest / "feedback" / name)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    tmp = dest / ".grades.csv.tmp"
    tmp.write_text(buf.getvalue(), newline="")
    fingerprint.write(dest, print_)
    os.replace(tmp, dest / "grades.csv")
    return len(rows)


def main(argv):
    p = argparse.ArgumentParser(prog="python -m course.grade merge", allow_abbrev=False,
                                description="Join sharded grading outputs into one gradebook.")
    p.add_argument("shards", nargs="+", type=Path, help="--out folders of the shards")
    p.add_argument("--out", type=Path, required=True, help="write grades.csv and feedback/ here")
    args = p.parse_args(argv)
    n = merge(args.shards, args.out)
    print(f"merged {len(args.shards)} shards: {n} students; wrote {args.out / 'grades.csv'}",
          file=sys.stderr)
    return 0
