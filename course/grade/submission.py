"""Reading what a student handed in: which file is which notebook, and which code answers what.

Only regular files inside the submission are read (never through a symbolic link, never a FIFO
or device), each up to a size cap; a file that is not a readable notebook costs only its own
notebook. Answer cells are found by nbgrader grade_id. If that fails (cell deleted, duplicated,
moved, or its function moved elsewhere), the cells that define the graded function names are
used instead, last definition wins, reduced to their imports and definitions so that no check or
demo runs. Only those candidate cells are parsed, each up to a size cap.
"""

import ast
import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course.grade import review
from course.grade.sandbox.harness import strip_magics
from course.grade.sandbox.runner import Cell, Plan
from course.grade.text import inline

MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_ENTRIES = 2000  # directory entries looked at in one submission folder
MAX_DEPTH = 6  # folder levels below the submission folder
MAX_CELL_CHARS = 200_000  # a bigger cell is never parsed by the grader (the student process may)
CELL_TYPES = {"code", "markdown", "raw"}


@dataclass
class Submission:
    """One student's notebooks: notebook id -> (path, notebook node)."""

    student: str
    folder: bool  # a folder is expected to hold every notebook; a single file only its own
    notebooks: dict = field(default_factory=dict)
    broken: dict = field(default_factory=dict)  # notebook id or file name -> reason
    notes: list = field(default_factory=list)  # for the feedback (may name the student's files)
    remarks: dict = field(default_factory=dict)  # notebook id -> [status words of the grader]
    refused: dict = field(default_factory=dict)  # reason -> count of files not read, by reason


def read_bytes(path, limit=MAX_NOTEBOOK_BYTES):
    """(bytes, None) or (None, reason): a regular file, opened without following a link, capped."""
    try:
        st = os.lstat(path)
    except OSError:
        return None, "unreadable file"
    if stat.S_ISLNK(st.st_mode):
        return None, "symbolic link"
    if not stat.S_ISREG(st.st_mode):  # never open a FIFO (blocks) or a device (endless)
        return None, "not a regular file"
    if st.st_size > limit:
        return None, "file too large"
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        return None, "symbolic link" if exc.errno == errno.ELOOP else "unreadable file"
    try:
        now = os.fstat(fd)  # the file opened is the one checked (not swapped in between)
        if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            return None, "not a regular file"
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        return (None, "file too large") if len(data) > limit else (data, None)
    except OSError:
        return None, "unreadable file"
    finally:
        os.close(fd)


def _clean_metadata(nb):
    """Make metadata the shapes the grader reads; the number of cells whose nbgrader was bad."""
    if not isinstance(nb.get("metadata"), dict):
        nb["metadata"] = nbformat.NotebookNode()
    bad = 0
    for cell in nb.cells:
        meta = cell.get("metadata")
        if not isinstance(meta, dict):
            cell["metadata"] = meta = nbformat.NotebookNode()
        nbg = meta.get("nbgrader")
        if nbg is not None and not (isinstance(nbg, dict)
                                    and isinstance(nbg.get("grade_id", ""), str)):
            del meta["nbgrader"]
            bad += 1
        tags = meta.get("tags")
        if tags is not None and not (isinstance(tags, list)
                                     and all(isinstance(t, str) for t in tags)):
            del meta["tags"]
    course_meta = nb.metadata.get("course")
    if course_meta is not None and not isinstance(course_meta, dict):
        del nb.metadata["course"]
    return bad


def read_notebook(path):
    """(notebook, None, bad nbgrader cells) or (None, reason, 0) for anything unreadable."""
    data, reason = read_bytes(path)
    if data is None:
        return None, f"not read ({reason})", 0
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
            return None, "not a notebook", 0
        for cell in nb.cells:
            if not isinstance(cell, dict) or cell.get("cell_type") not in CELL_TYPES \
                    or not isinstance(cell.get("source", ""), str):
                return None, "not a notebook", 0
            cell.setdefault("source", "")
        return nb, None, _clean_metadata(nb)
    except (Exception, RecursionError, MemoryError):  # noqa: BLE001 - empty, truncated, deep...
        return None, "not a notebook", 0


def grade_id(cell):
    """The cell's nbgrader grade_id (metadata already cleaned), or None."""
    return cell.metadata.get("nbgrader", {}).get("grade_id") or None


def tags(cell):
    return set(cell.metadata.get("tags", []))


def identify(nb, path, course):
    """(notebook id or None, remark or None): by the grade_ids inside, else metadata, else name.

    The answers decide: a file holding 02's answers under 03's id is graded as 02, and says so.
    """
    known = set(course.notebook_ids)
    claimed = nb.metadata.get("course", {}).get("notebook")
    claimed = claimed if isinstance(claimed, str) and claimed in known else None
    owners = {}  # grade_id -> the notebooks asking it (02 and 04 both grade batchnorm_forward)
    for q in course.questions:
        owners.setdefault(q.grade_id, []).append(q.notebook)
    votes = {}
    for cell in nb.cells:
        for nb_id in owners.get(grade_id(cell), ()):
            votes[nb_id] = votes.get(nb_id, 0) + 1
    if votes:
        best = max(sorted(votes), key=votes.get)
        if claimed and claimed != best and votes.get(claimed, 0) < votes[best]:
            return best, f"the file claims to be {claimed} but holds the answers of {best}"
        return claimed or best, None
    if claimed:
        return claimed, None
    stem = Path(path).stem
    return (stem if stem in known else None), None


def _walk(folder):
    """(notebook files, {relative name: reason}, notes) under a folder, links never followed."""
    files, refused, notes, seen = [], {}, [], 0
    stack = [(Path(folder), 0)]
    while stack:
        here, depth = stack.pop()
        try:
            with os.scandir(here) as it:
                entries = []
                for e in it:
                    seen += 1
                    if seen > MAX_ENTRIES:
                        break
                    entries.append(e)
        except OSError:
            continue
        if seen > MAX_ENTRIES:
            notes.append(f"the folder holds more than {MAX_ENTRIES} entries; looked at the first")
            stack = []
        for e in sorted(entries, key=lambda e: e.name, reverse=True):
            rel = str(Path(e.path).relative_to(folder))
            try:
                if e.is_symlink():
                    if e.name.endswith(".ipynb") or os.path.isdir(e.path):
                        refused[rel] = "symbolic link"
                elif e.is_dir(follow_symlinks=False):
                    if e.name == ".ipynb_checkpoints":
                        continue
                    if depth >= MAX_DEPTH:
                        notes.append(f"folders nested deeper than {MAX_DEPTH} levels not read")
                    else:
                        stack.append((Path(e.path), depth + 1))
                elif e.name.endswith(".ipynb"):
                    if e.is_file(follow_symlinks=False):
                        files.append(Path(e.path))
                    else:
                        refused[rel] = "not a regular file"
            except OSError:
                refused[rel] = "unreadable file"
    return sorted(files), refused, sorted(set(notes))


def collect(target, course):
    """A Submission from a folder (student = folder name) or a single .ipynb (student = stem)."""
    target = Path(target)
    if target.is_dir() and not target.is_symlink():
        sub = Submission(target.name, folder=True)
        files, refused, notes = _walk(target)
        sub.notes += notes
    else:
        sub = Submission(target.name if target.is_dir() else target.stem, folder=False)
        files, refused = [target], {}
    for name, reason in refused.items():
        _refuse(sub, course, Path(name), f"not read ({reason})")
    for path in files:
        nb, reason, bad_meta = read_notebook(path)
        name = path.relative_to(target) if sub.folder else Path(path.name)
        if nb is None:
            _refuse(sub, course, name, reason)
            continue
        nb_id, remark = identify(nb, path, course)
        if nb_id is None:
            if not sub.folder:
                sub.broken[str(name)] = "not a course notebook"
            else:
                sub.notes.append(f"ignored {inline(name)}: not a course notebook")
            continue
        if nb_id in sub.notebooks:
            prev = sub.notebooks[nb_id][0]
            keep = path if path.stem == nb_id and prev.stem != nb_id else prev
            sub.notes.append(f"two files claim {nb_id} ({inline(prev.name)}, "
                             f"{inline(path.name)}); graded {inline(keep.name)}")
            if keep is prev:
                continue
        remarks = ([remark] if remark else []) + \
            ([f"malformed nbgrader metadata in {bad_meta} cell(s)"] if bad_meta else [])
        sub.notebooks[nb_id] = (path, nb)
        sub.remarks[nb_id] = remarks
        sub.broken.pop(nb_id, None)
    return sub


def _refuse(sub, course, name, reason):
    """Record a file that was not graded: under its notebook id if its name is one."""
    stem = name.stem
    if stem not in course.notebook_ids:
        sub.broken[str(name)] = reason
    elif stem not in sub.notebooks:
        sub.broken[stem] = reason
    sub.notes.append(f"{inline(name)}: {reason}")


def _parse(source):
    """(tree, parsed source) of a cell, or (None, None): too big, not Python, or too deep."""
    if len(source) > MAX_CELL_CHARS:
        return None, None
    text = strip_magics(source)
    try:
        return ast.parse(text), text
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # `x = ---...1`, deep nests
        return None, None


def defined_names(tree):
    """Function names a cell defines at top level (def, or name = other_name / lambda)."""
    names = set()
    for node in tree.body if tree is not None else []:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign) and isinstance(node.value, (ast.Name, ast.Lambda)):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _callless_assign(node):
    """`EPS = 1e-5`, `AXES = (0, 2)`, `f = g`: assignments that call nothing."""
    return isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and \
        not any(isinstance(n, ast.Call) for n in ast.walk(node.value))


def _span(node):
    """First and last line of a top-level statement, decorators included."""
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return first, node.end_lineno


def definitions_only(tree, text):
    """The cell reduced to imports, definitions and call-free assignments (no checks or demos).

    Kept statements are cut out of the source as written (ast.unparse recurses on deep
    expressions); one that shares a line with a dropped statement (`import os; os._exit(1)`)
    is unparsed alone instead, and left out if even that fails.
    """
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    kept = [isinstance(n, keep) or _callless_assign(n) for n in tree.body]
    dropped = {line for n, k in zip(tree.body, kept, strict=True) if not k
               for line in (_span(n)[0], _span(n)[1])}
    lines = text.splitlines(keepends=True)
    parts = []
    for node, k in zip(tree.body, kept, strict=True):
        if not k:
            continue
        first, last = _span(node)
        if not dropped & {first, last}:
            parts.append("".join(lines[first - 1:last]).rstrip("\n") + "\n")
            continue
        try:
            parts.append(ast.unparse(node) + "\n")
        except (RecursionError, ValueError):
            continue
    return "".join(parts)


@dataclass
class Extracted:
    """The plan to run for one notebook plus what the feedback should mention."""

    plan: Plan
    notes: dict = field(default_factory=dict)  # grade_id -> [sentences]
    flags: dict = field(default_factory=dict)  # grade_id -> reason for a human to review
    written: dict = field(default_factory=dict)  # grade_id -> the student's written answer


def extract(course, nb_id, nb):
    """Pick the student's answer cells for every question of one notebook."""
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    official = {q.grade_id for q in course.questions_of(nb_id)}
    names = {f for q in course.questions_of(nb_id) for f in q.functions}
    parsed = {i: _parse(c.source) for i, c in code  # only cells that can answer something
              if grade_id(c) in official or any(n in c.source for n in names)}
    trees = {i: parsed.get(i, (None, None))[0] for i, _ in code}
    chosen = {}  # cell index -> [full source?, questions]
    setup_names = review.setup_names(course.setup(nb_id))  # course names the answers can see
    out = Extracted(Plan(nb_id, course.setup(nb_id), [], [], course.registry, course.path))
    for q in course.questions_of(nb_id):
        if q.manual:
            cells = [c for c in nb.cells if grade_id(c) == q.grade_id]
            text = "\n\n".join(c.source.strip() for c in cells).strip()
            out.written[q.grade_id] = text if text and text != "YOUR ANSWER HERE" else ""
            continue
        out.plan.questions.append(q.grade_id)
        by_id = [i for i, c in code if grade_id(c) == q.grade_id]
        picks = []
        if len(by_id) == 1 and (trees[by_id[0]] is None
                                or set(q.functions) <= defined_names(trees[by_id[0]])):
            picks = [(by_id[0], True)]
        else:
            for name in q.functions:
                last = [i for i, _ in code if name in defined_names(trees[i])]
                if last:
                    picks.append((last[-1], False))
            how = "duplicated" if len(by_id) > 1 else "not found" if not by_id else "changed"
            names = ", ".join(q.functions)
            out.notes.setdefault(q.grade_id, []).append(
                f"the answer cell `{q.grade_id}` was {how}; graded the last cell(s) that "
                f"define {names}" if picks else f"no cell defines {names}")
        for i, full in picks:
            entry = chosen.setdefault(i, [full, []])
            entry[0] = entry[0] or full
            if q.grade_id not in entry[1]:
                entry[1].append(q.grade_id)
        # Reviewed: the cells graded, and the answer cell itself even when it defines nothing
        # (a function made by exec is not graded, and still worth a look).
        for i in dict.fromkeys([i for i, _ in picks] + by_id):
            reason = review.flag(trees[i], course.tasks.get((nb_id, q.grade_id)), setup_names)
            if reason:
                out.flags[q.grade_id] = reason
    for i in sorted(chosen):
        full, gids = chosen[i]
        cell = nb.cells[i]
        source = cell.source if full or trees[i] is None else definitions_only(*parsed[i])
        gid = grade_id(cell)  # a label the grader may print: an official id, or a position
        label = gid if gid in official else f"#{i + 1}"
        out.plan.cells.append(Cell(source, label, tuple(gids)))
    return out
