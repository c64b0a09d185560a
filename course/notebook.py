"""Reading course notebooks: ids, tags and the nbgrader-style cell metadata they carry."""

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"
# Where `pip install` (non-editable) puts the student notebooks (pyproject's data-files): an
# installed grader reads setup cells, question ids and points from them; solutions are not shipped.
INSTALLED_NOTEBOOKS = Path(sys.prefix) / "share" / "bn-course" / "notebooks"


class NotInRepository(FileNotFoundError):
    """The course's notebooks are not where a clone or an installed package keeps them."""


def grading_sources():
    """The folder the grader reads the official notebooks from: solutions/ in a clone, else the
    student notebooks an installed package ships (same setup cells, ids and points)."""
    for folder in (SOLUTIONS, INSTALLED_NOTEBOOKS):
        if any(folder.glob("[0-9][0-9]_*.ipynb")):
            return folder
    raise NotInRepository(
        f"no course notebooks found: neither {SOLUTIONS} (a clone of the repository) nor "
        f"{INSTALLED_NOTEBOOKS} (an installed bn-course); reinstall the package or run from a "
        "clone")

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def read(path):
    """A notebook as an nbformat node (v4)."""
    return nbformat.read(str(path), as_version=4)


def notebook_id(nb, path=None):
    """The course id of a notebook: its metadata, else its file name (e.g. 02_forward_pass)."""
    nb_id = nb.metadata.get("course", {}).get("notebook")
    if nb_id:
        return nb_id
    return Path(path).stem if path is not None else None


def tags(cell):
    """The cell's tags as a set."""
    return set(cell.get("metadata", {}).get("tags", []))


def grade_id(cell):
    """The nbgrader grade_id of an answer cell, or None."""
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def setup_cells(nb):
    """Code cells tagged `setup`: what every graded run executes before the answers."""
    return [c for c in nb.cells if c.cell_type == "code" and "setup" in tags(c)]


def solution_paths():
    """The instructor notebooks, sorted by number; only a clone of the repository has them."""
    paths = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise NotInRepository(f"{SOLUTIONS} holds no solution notebooks: release and the nbgrader "
                              "export work only in a clone of the repository")
    return paths
