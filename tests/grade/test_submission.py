"""Reading submissions: which file is which notebook, which cells answer what."""

import copy

import nbformat
import pytest
from grade_helpers import (
    COURSE,
    SOURCES,
    ZOO_NB,
    answer_index,
    auto,
    full_marks,
    points,
)

pytestmark = pytest.mark.skipif(not SOURCES, reason="no solution notebook with graded tasks yet")


def test_solution_gets_full_marks(zoo):
    for name in ("full", "renamed", "renamed_no_metadata", "folder_student", "moved_cell",
                 "duplicated_solution_last", "noisy"):
        row = zoo["rows"][name]
        assert row["status"] == "ok", (name, row["status"])
        assert full_marks(row), (name, row)
        assert float(row["total"]) == float(row["max_total"]) > 0


def test_broken_files_are_not_notebooks(zoo):
    for name in ("malformed", "empty"):
        row = zoo["rows"][name]
        assert row["status"] == "not a notebook"
        assert float(row["total"]) == 0


def test_deleted_or_stub_last_answer_costs_only_that_question(zoo):
    victim = auto(ZOO_NB)[0]
    for name in ("deleted_cell", "duplicated_stub_last"):
        row = zoo["rows"][name]
        assert row["status"] == "ok"
        assert points(row, victim) == 0
        assert full_marks(row, skip={victim.grade_id})


def test_fallback_runs_only_definitions_of_a_moved_cell():
    from course.grade.submission import extract
    q = auto(ZOO_NB)[0]
    nb = copy.deepcopy(SOURCES[ZOO_NB])
    i = answer_index(nb, q.grade_id)
    moved = nbformat.v4.new_code_cell(
        "%timeit 1\nimport numpy as np\nCONSTANT = 3\n" + nb.cells[i].source
        + "\nprint('top-level code')\ncheck('x')\n")
    del nb.cells[i]
    nb.cells.append(moved)
    ex = extract(COURSE, ZOO_NB, nb)
    (cell,) = [c for c in ex.plan.cells if q.grade_id in c.questions]
    assert "print(" not in cell.source.split("def ")[0] and "check(" not in cell.source
    assert "import numpy as np" in cell.source and "CONSTANT = 3" in cell.source
    assert all(f"def {f}" in cell.source for f in q.functions)
    assert "not found" in " ".join(ex.notes[q.grade_id])
