"""Reading what a student handed in: which file is which notebook, and which code answers what.

Answer cells are found by nbgrader grade_id. If that fails (cell deleted, duplicated, moved, or
its function moved elsewhere), the cells that define the graded function names are used instead,
last definition wins, reduced to their imports and definitions so that no check or demo runs.
"""

import ast
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course import notebook as nbtools
from course.grade.sandbox.harness import strip_magics
from course.grade.sandbox.runner import Cell, Plan

MAX_NOTEBOOK_BYTES = 50 * 2**20
SUSPICIOUS = {"use_or_reference", "__import__", "importlib"}


@dataclass
class Submission:
    """One student's notebooks: notebook id -> (path, notebook node)."""

    student: str
    folder: bool  # a folder is expected to hold every notebook; a single file only its own
    notebooks: dict = field(default_factory=dict)
    broken: dict = field(default_factory=dict)  # notebook id or file name -> "not a notebook"
    notes: list = field(default_factory=list)


def read_notebook(path):
    """(notebook, None) or (None, reason) for anything that is not a readable v4 notebook."""
    try:
        if Path(path).stat().st_size > MAX_NOTEBOOK_BYTES:
            return None, "not a notebook (file too large)"
        nb = nbformat.read(str(path), as_version=4)
        if not isinstance(nb.get("cells"), list):
            return None, "not a notebook"
        for cell in nb.cells:
            cell.setdefault("metadata", {})
            if not isinstance(cell.get("source", ""), str) or "cell_type" not in cell:
                return None, "not a notebook"
        return nb, None
    except Exception:  # noqa: BLE001 - empty, truncated, not JSON, wrong schema...
        return None, "not a notebook"


def identify(nb, path, course):
    """The notebook id: the release metadata, else the grade_ids inside, else the file name."""
    known = set(course.notebook_ids)
    meta = nb.metadata.get("course", {}) if isinstance(nb.metadata, dict) else {}
    if isinstance(meta, dict) and meta.get("notebook") in known:
        return meta["notebook"]
    owners = {}  # grade_id -> the notebooks asking it (02 and 04 both grade batchnorm_forward)
    for q in course.questions:
        owners.setdefault(q.grade_id, []).append(q.notebook)
    votes = {}
    for cell in nb.cells:
        for nb_id in owners.get(nbtools.grade_id(cell), ()):
            votes[nb_id] = votes.get(nb_id, 0) + 1
    if votes:
        return max(sorted(votes), key=votes.get)
    stem = Path(path).stem
    return stem if stem in known else None


def collect(target, course):
    """A Submission from a folder (student = folder name) or a single .ipynb (student = stem)."""
    target = Path(target)
    if target.is_dir():
        sub = Submission(target.name, folder=True)
        files = sorted(p for p in target.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    else:
        sub = Submission(target.stem, folder=False)
        files = [target]
    for path in files:
        nb, reason = read_notebook(path)
        if nb is None:
            stem = path.stem
            sub.broken[stem if stem in course.notebook_ids else path.name] = reason
            continue
        nb_id = identify(nb, path, course)
        if nb_id is None:
            if not sub.folder:
                sub.broken[path.name] = "not a course notebook"
            else:
                sub.notes.append(f"ignored {path.name}: not a course notebook")
            continue
        if nb_id in sub.notebooks:
            prev = sub.notebooks[nb_id][0]
            keep = path if path.stem == nb_id and prev.stem != nb_id else prev
            sub.notes.append(f"two files claim {nb_id} ({prev.name}, {path.name}); "
                             f"graded {keep.name}")
            if keep is prev:
                continue
        sub.notebooks[nb_id] = (path, nb)
        sub.broken.pop(nb_id, None)
    return sub


def _parse(source):
    try:
        return ast.parse(strip_magics(source))
    except (SyntaxError, ValueError):
        return None


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


def definitions_only(tree):
    """The cell reduced to imports, definitions and call-free assignments (no checks or demos)."""
    keep = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    body = [n for n in tree.body if isinstance(n, keep) or _callless_assign(n)]
    return ast.unparse(ast.Module(body=body, type_ignores=[]))


def suspicious(tree):
    """Why an answer looks like it hands back the course's own reference, or None."""
    for node in ast.walk(tree) if tree is not None else []:
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "course"
                                                for a in node.names):
            return "imports from the course package"
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "course":
            return "imports from the course package"
        if isinstance(node, ast.Name) and node.id in SUSPICIOUS:
            return f"uses {node.id}"
        if isinstance(node, ast.Attribute) and node.attr in SUSPICIOUS:
            return f"uses {node.attr}"
    return None


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
    trees = {i: _parse(c.source) for i, c in code}
    chosen = {}  # cell index -> [full source?, questions]
    out = Extracted(Plan(nb_id, course.setup(nb_id), [], [], course.registry, course.path))
    for q in course.questions_of(nb_id):
        if q.manual:
            cells = [c for c in nb.cells if nbtools.grade_id(c) == q.grade_id]
            text = "\n\n".join(c.source.strip() for c in cells).strip()
            out.written[q.grade_id] = text if text and text != "YOUR ANSWER HERE" else ""
            continue
        out.plan.questions.append(q.grade_id)
        by_id = [i for i, c in code if nbtools.grade_id(c) == q.grade_id]
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
            reason = suspicious(trees[i])
            if reason:
                out.flags[q.grade_id] = reason
    for i in sorted(chosen):
        full, gids = chosen[i]
        cell = nb.cells[i]
        source = cell.source if full or trees[i] is None else definitions_only(trees[i])
        label = nbtools.grade_id(cell) or f"#{i + 1}"
        out.plan.cells.append(Cell(source, label, tuple(gids)))
    return out
