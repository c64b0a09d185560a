"""Reading course notebooks: ids, tags and the nbgrader-style cell metadata they carry."""

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = ROOT / "notebooks"

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


def answer_cells(nb):
    """Cells tagged `answer` (code and written ones), in notebook order."""
    return [c for c in nb.cells if "answer" in tags(c)]


def solution_paths():
    """The instructor notebooks, sorted by number."""
    return sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
