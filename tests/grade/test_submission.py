"""Reading submissions: which file is which notebook, which cells answer what."""

import copy
import os
import stat

import grade_helpers as gh
import nbformat
import pytest


def test_solution_gets_full_marks(zoo):
    for name in ("full", "renamed", "renamed_no_metadata", "folder_student", "moved_cell",
                 "duplicated_solution_last", "noisy"):
        row = zoo["rows"][name]
        assert row["status"] == "ok", (name, row["status"])
        assert gh.full_marks(row), (name, row)
        assert float(row["total"]) == float(row["max_total"]) > 0


def test_broken_files_are_not_notebooks(zoo):
    for name in ("malformed", "empty"):
        row = zoo["rows"][name]
        assert row["status"] == "not a notebook"
        assert float(row["total"]) == 0


def test_deleted_or_stub_last_answer_costs_only_that_question(zoo):
    victim = gh.auto(gh.ZOO_NB)[0]
    for name in ("deleted_cell", "duplicated_stub_last"):
        row = zoo["rows"][name]
        assert row["status"] == "ok"
        assert gh.points(row, victim) == 0
        assert gh.full_marks(row, skip={victim.grade_id})


def _extract_with_answer_moved_last(rewrite):
    """Extract the zoo's solution after moving its first auto-graded answer to a new cell at the
    end, with source rewrite(its source). Returns the question, its extracted cell, the result."""
    from course.grade.submission import extract
    q = gh.auto(gh.ZOO_NB)[0]
    nb = copy.deepcopy(gh.SOURCES[gh.ZOO_NB])
    i = gh.answer_index(nb, q.grade_id)
    moved = nbformat.v4.new_code_cell(rewrite(nb.cells[i].source))
    del nb.cells[i]
    nb.cells.append(moved)
    ex = extract(gh.COURSE, gh.ZOO_NB, nb)
    (cell,) = [c for c in ex.plan.cells if q.grade_id in c.questions]
    return q, cell, ex


def test_fallback_runs_only_definitions_of_a_moved_cell():
    q, cell, ex = _extract_with_answer_moved_last(
        lambda src: "%timeit 1\nimport numpy as np\nCONSTANT = 3\n" + src
        + "\nprint('top-level code')\ncheck('x')\nimport os; os._exit(9)\n")
    assert "print(" not in cell.source.split("def ")[0] and "check(" not in cell.source
    assert "_exit" not in cell.source and "import os" in cell.source
    assert "import numpy as np" in cell.source and "CONSTANT = 3" in cell.source
    assert all(f"def {f}" in cell.source for f in q.functions)
    assert "not found" in " ".join(ex.notes[q.grade_id])


# ------------------------------------------- hostile files (one batch, two notebooks) --------

TWO = sorted(gh.SOURCES)[:2]


def _all_points(row, nb_id):
    return all(gh.points(row, q) == q.points for q in gh.auto(nb_id))


def _no_points(row, nb_id):
    return all(gh.points(row, q) == 0 for q in gh.auto(nb_id))


@pytest.fixture(scope="module")
def files_batch(tmp_path_factory):
    """Students whose first notebook is a hostile file and whose second one is solved."""
    first, second = TWO
    tmp = tmp_path_factory.mktemp("files")
    subs = tmp / "subs"
    solved = gh.write(subs / "honest" / f"{first}.ipynb", gh.SOURCES[first]).parent
    gh.write(solved / f"{second}.ipynb", gh.SOURCES[second])
    links = subs / "links_only"  # links to the official solutions and to another student
    links.mkdir()
    for nb_id in TWO:
        (links / f"{nb_id}.ipynb").symlink_to(gh.COURSE.solutions / f"{nb_id}.ipynb")
    (links / "friend").symlink_to(solved, target_is_directory=True)
    (subs / "linked_folder").symlink_to(solved, target_is_directory=True)

    def student(name, make_first):
        folder = subs / name
        folder.mkdir(parents=True, exist_ok=True)
        make_first(folder / f"{first}.ipynb")
        gh.write(folder / f"{second}.ipynb", gh.SOURCES[second])
        return folder

    student("fifo", os.mkfifo)
    student("to_dev_zero", lambda p: p.symlink_to("/dev/zero"))
    student("huge", lambda p: p.write_bytes(b"") or os.truncate(p, 30 * 2**20))
    student("deep_json", lambda p: p.write_text("[" * 200_000 + "]" * 200_000))
    student("deep_json_frame", lambda p: p.write_text(
        '{"cells": ' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "}"))
    bad_meta = copy.deepcopy(gh.SOURCES[first])
    for i in [gh.answer_index(bad_meta, q.grade_id) for q in gh.auto(first)]:
        bad_meta.cells[i].metadata["nbgrader"] = ["a", "list"]
    student("list_metadata", lambda p: gh.write(p, bad_meta))
    bombs = copy.deepcopy(gh.SOURCES[first])
    name = gh.auto(first)[0].functions[0]
    bombs.cells += [nbformat.v4.new_code_cell("x = " + "-" * 100_000 + "1"),
                    nbformat.v4.new_code_cell(f"{name}2 = " + "-" * 10_000 + "1"),
                    nbformat.v4.new_code_cell(f"# {name}\n" + "y = 1\n" * 300_000),
                    nbformat.v4.new_code_cell(f"{name}_ = " + "(" * 5_000 + ")" * 5_000)]
    student("parser_bombs", lambda p: gh.write(p, bombs))
    claims = copy.deepcopy(gh.SOURCES[first])  # first's answers under second's id
    claims.metadata["course"] = {"notebook": second}
    gh.write(subs / "wrong_id" / "mine.ipynb", claims)
    nested = subs / "nested"
    gh.write(nested / f"{first}.ipynb", gh.SOURCES[first])
    gh.write(nested / f"{second}.ipynb", gh.SOURCES[second])
    deep = str(nested)
    for _ in range(300):  # one level at a time: pathlib's mkdir(parents=True) recurses
        deep += "/d"
        os.mkdir(deep)
    nbformat.write(gh.SOURCES[first], deep + "/hidden.ipynb")
    try:  # a character device inside the folder (needs CAP_MKNOD)
        dev = student("device", lambda p: os.mknod(p, 0o644 | stat.S_IFCHR, os.makedev(1, 5)))
    except (OSError, PermissionError):
        dev = None
    targets = sorted(p for p in subs.iterdir())
    rows, proc = gh.grade(tmp / "out", *targets, extra=["--notebooks", ",".join(TWO)])
    return {"rows": rows, "proc": proc, "out": tmp / "out", "device": dev}


def test_symlinks_to_solutions_or_another_student_earn_nothing(files_batch):
    rows = files_batch["rows"]
    row = rows["links_only"]
    assert _no_points(row, TWO[0]) and _no_points(row, TWO[1])
    assert f"{TWO[0]}: not read (symbolic link)" in row["status"], row["status"]
    assert "not read (symbolic link): 1 file" in row["status"]  # the linked folder
    row = rows["linked_folder"]
    assert row["status"] == "not read (symbolic link)" and float(row["total"]) == 0
    assert _all_points(rows["honest"], TWO[0]) and rows["honest"]["status"] == "ok"


@pytest.mark.parametrize("name, status, first_scores", [
    ("fifo", "{first}: not read (not a regular file)", False),
    ("to_dev_zero", "{first}: not read (symbolic link)", False),
    ("huge", "{first}: not read (file too large)", False),
    ("deep_json", "{first}: not a notebook", False),
    ("deep_json_frame", "{first}: not a notebook", False),
    ("device", "{first}: not read (not a regular file)", False),
    # nbgrader metadata that is a list is named, and the answers are still found
    ("list_metadata", "{first}: malformed nbgrader metadata in {n} cell(s)", True),
    ("parser_bombs", "ok", True),  # cells the parser chokes on do not reach the grader
    ("nested", "ok", True),
])
def test_a_hostile_file_costs_at_most_its_own_notebook(files_batch, name, status, first_scores):
    if name == "device" and files_batch["device"] is None:
        pytest.skip("cannot create a device node here")
    row = files_batch["rows"][name]
    assert row["status"] == status.format(first=TWO[0], n=len(gh.auto(TWO[0]))), row["status"]
    assert (_all_points if first_scores else _no_points)(row, TWO[0])
    assert _all_points(row, TWO[1])


def test_a_notebook_claiming_another_notebooks_id_is_graded_by_its_answers(files_batch):
    row = files_batch["rows"]["wrong_id"]
    first, second = TWO
    assert f"{first}: the file claims to be {second} but holds the answers of {first}" \
        in row["status"], row["status"]
    assert f"{second}: missing" in row["status"]
    assert _all_points(row, first) and _no_points(row, second)


def test_deeply_nested_folders_are_not_walked_to_the_bottom(files_batch):
    # the student's status and points: in test_a_hostile_file_costs_at_most_its_own_notebook
    text = (files_batch["out"] / "feedback" / "nested.md").read_text()
    assert "nested deeper than" in text
    assert f"graded {len(files_batch['rows'])} students" in files_batch["proc"].stderr


def test_parser_bombs_and_deep_trees_are_bounded_in_extract():
    from course.grade.submission import definitions_only
    q, cell, _ = _extract_with_answer_moved_last(  # ast.unparse recurses on this
        lambda src: src + "\nDEEP = " + "-" * 900 + "1\n")
    assert "DEEP = " in cell.source and all(f"def {f}" in cell.source for f in q.functions)
    assert definitions_only.__doc__


def test_files_a_student_likely_meant_are_named_in_the_status(tmp_path):
    from course.release import student_version
    subs = tmp_path / "subs"
    sol = gh.SOURCES[gh.ZOO_NB]
    gh.write(subs / "upper" / f"{gh.ZOO_NB}.IPYNB", sol)
    (subs / "upper" / "work.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    gh.write(subs / "copies" / f"{gh.ZOO_NB}.ipynb", student_version(sol, gh.ZOO_NB))
    gh.write(subs / "copies" / f"{gh.ZOO_NB}-Copy1.ipynb", sol)
    gh.write(subs / "same_copies" / f"{gh.ZOO_NB}.ipynb", sol)
    gh.write(subs / "same_copies" / f"{gh.ZOO_NB} (1).ipynb", sol)
    rows, _ = gh.grade(tmp_path / "out", *sorted(subs.iterdir()),
                       extra=["--notebooks", gh.ZOO_NB])
    assert rows["upper"]["status"] == ("not read (extension not in lower case: rename it to "
                                       ".ipynb); not read (an archive: unpack it): 1 file")
    assert rows["copies"]["status"] == "another copy with other answers was not graded"
    assert float(rows["copies"]["total"]) == 0  # the copy named like the notebook was graded
    text = (tmp_path / "out" / "feedback" / "copies.md").read_text()
    assert f"{gh.ZOO_NB}-Copy1.ipynb" in text and "graded" in text
    assert rows["same_copies"]["status"] == "ok" and gh.full_marks(rows["same_copies"])
