"""What a gradebook was graded with: a fingerprint of the secret and of the course, kept beside it.

`--resume` and `merge` compare it before they add a row to a gradebook, so rows from another
secret (other hidden inputs) or another version of the course (other questions, points, case
code, references or setup cells) never meet in one grades.csv. The secret is stored only as a
slow salted hash.
"""

import hashlib
import inspect
import json
import os
import sys
from pathlib import Path

import numpy as np

from course.tasks.base import run_case

FILE = ".fingerprint"
_SALT = b"course.grade fingerprint v1"


def secret_id(secret):
    """A slow salted hash of the secret: equal secrets, equal ids; the secret is not readable."""
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), _SALT, 100_000).hex()


def _feed(h, value):
    """Hash a nested value of case inputs or outputs (arrays by dtype, shape and bytes)."""
    if isinstance(value, np.ndarray):
        h.update(f"array {value.dtype.str} {value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, dict):
        h.update(f"dict {len(value)}".encode())
        for k in sorted(value, key=str):
            h.update(str(k).encode())
            _feed(h, value[k])
    elif isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__} {len(value)}".encode())
        for v in value:
            _feed(h, v)
    else:
        h.update(repr(value).encode())


def course_id(course, questions):
    """A hash of what grading these questions depends on: columns, points and functions; for
    auto-graded ones the task module's source, the public cases and the reference's outputs on
    them (so helpers in other modules count too); each notebook's setup cells."""
    h = hashlib.sha256()
    for q in questions:
        h.update(json.dumps([q.column, q.points, q.manual, list(q.functions)]).encode())
        if q.manual:
            continue
        task = course.tasks[q.notebook, q.grade_id]
        h.update(inspect.getsource(sys.modules[task.run.__module__]).encode())
        for case in task.cases():
            _feed(h, case.inputs)
            _feed(h, run_case(task, task.reference, case).outputs)
    for nb_id in sorted({q.notebook for q in questions}):
        for source in course.setup(nb_id):
            h.update(source.encode())
    return h.hexdigest()


def make(course, questions, secret, shard=None):
    """The fingerprint of a grading run, as a dict (shard: (K, N) or None)."""
    return {"secret": secret_id(secret), "course": course_id(course, questions),
            "columns": [q.column for q in questions],
            "shard": None if shard is None else f"{shard[0]}/{shard[1]}"}


def read(out):
    """The fingerprint stored in an output folder, or None."""
    try:
        return json.loads((Path(out) / FILE).read_text())
    except (OSError, ValueError):
        return None


def write(out, print_):
    """Store a fingerprint in an output folder (replaced whole)."""
    path = Path(out) / FILE
    tmp = path.with_name(f"{FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(print_, indent=1) + "\n")
    os.replace(tmp, path)


def mismatch(stored, current, where, other="this run", resume=False):
    """Why rows graded with `stored` (in `where`) may not join rows graded with `current` (in
    `other`), or None. A resumed run must also grade the same shard (merged shards differ)."""
    if not isinstance(stored, dict):
        return (f"{where} has no readable {FILE} (graded by an older grader, or edited): its rows "
                "cannot be checked against this run")
    if stored.get("secret") != current["secret"]:
        return (f"{where} was graded with another secret than {other}: their hidden inputs "
                "differ")
    if stored.get("columns") != current["columns"]:
        return (f"{where} was graded with other questions than {other} (another course or "
                "--notebooks)")
    if stored.get("course") != current["course"]:
        return (f"{where} was graded with another version of the course than {other} "
                "(questions, points, hidden-case code, references or setup cells changed)")
    if resume and stored.get("shard") != current.get("shard"):
        return (f"{where} holds shard {stored.get('shard') or 'all'}, not "
                f"{current.get('shard') or 'all'}")
    return None
