"""Every course notebook: skeleton, grading metadata, stripped outputs, answers vs reference."""

import ast
import re
import subprocess
import sys

import nbformat
import pytest

from course import release
from course.notebook import (
    NOTEBOOKS,
    grade_id,
    notebook_id,
    read,
    setup_cells,
    solution_paths,
    tags,
)
from course.tasks import all_tasks, evaluate, for_notebook, get, run_case

SOLUTIONS = solution_paths()
ALL_NOTEBOOKS = SOLUTIONS + [NOTEBOOKS / p.name for p in SOLUTIONS]
ids = [p.stem for p in SOLUTIONS]


def answer_cells(nb):
    """Cells tagged `answer` (code and written ones), in notebook order."""
    return [c for c in nb.cells if "answer" in tags(c)]


def _namespace(nb):
    """Run the setup cells, then the answer code cells, as the grader does; return the names."""
    ns = {"__name__": "__answers__"}
    for cell in setup_cells(nb) + [c for c in answer_cells(nb) if c.cell_type == "code"]:
        exec(compile(cell.source, "<cell>", "exec"), ns)
    return ns


def test_there_are_solution_notebooks_and_each_has_a_student_copy():
    assert SOLUTIONS, "solutions/ holds no notebooks"
    for path in SOLUTIONS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+", path.stem), path.name
        assert (NOTEBOOKS / path.name).exists(), f"run python -m course.release ({path.name})"


def test_student_notebooks_are_what_release_generates(capsys):
    assert release.main(["--check"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_notebook_is_committed_without_outputs(path):
    nb = read(path)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not dirty, f"cells {dirty} have outputs; strip them (nbstripout) before committing"


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_notebook_follows_the_course_skeleton(path):
    nb = read(path)
    cells = nb.cells
    md = [c.source for c in cells if c.cell_type == "markdown"]
    title = cells[0].source
    assert cells[0].cell_type == "markdown" and title.startswith(f"# {path.stem[:2]}"), title[:40]
    assert "**Objectives**" in title and re.search(r"Estimated time: \d+", title)
    setup_heading = next(i for i, c in enumerate(cells) if c.source.startswith("## Setup"))
    assert "setup" in tags(cells[setup_heading + 1]), "the cell after '## Setup' is tagged setup"
    assert len(setup_cells(nb)) == 1
    assert not re.search(r"^\s*[%!]", setup_cells(nb)[0].source, re.MULTILINE), \
        "setup must be plain Python (the grader runs it outside IPython)"
    assert any(s.startswith("## 1.") for s in md), "sections are numbered '## 1. ...'"
    assert any("### Think!" in s for s in md), "at least one Think! question"
    assert cells[-1].cell_type == "markdown" and cells[-1].source.startswith("## Summary")
    assert nb.metadata.get("course", {}).get("notebook") == path.stem
    demos = [i for i, c in enumerate(cells) if "demo" in tags(c)]
    assert demos, "every notebook has at least one interactive demo"
    for i in demos:
        intro = next(c.source for c in reversed(cells[:i]) if c.cell_type == "markdown")
        assert "### Interactive demo" in intro and "?" in intro, \
            "a demo is introduced by its guiding question"


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_answer_cells_carry_grading_metadata_matching_the_registry(path):
    nb = read(path)
    nb_id = notebook_id(nb, path)
    tasks = {t.grade_id: t for t in for_notebook(nb_id)}
    seen = []
    for cell in answer_cells(nb):
        meta = cell.metadata.get("nbgrader", {})
        gid = grade_id(cell)
        assert gid and meta.get("solution") is True, cell.source[:60]
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, gid
        seen.append(gid)
        if cell.cell_type == "markdown":
            assert meta.get("grade") is True and gid.startswith("think_"), gid
            assert meta.get("points", 0) > 0, f"{gid}: a written answer's points are typed here"
            continue
        assert meta.get("grade") is False
        assert gid in tasks, f"answer cell {gid} has no Task in course/tasks for {nb_id}"
        assert "points" not in meta, f"{gid}: points belong to the Task; release writes them"
        defined = {n.name for n in ast.parse(cell.source).body if isinstance(n, ast.FunctionDef)}
        assert set(tasks[gid].functions) <= defined, f"{gid} must define {tasks[gid].functions}"
    assert len(seen) == len(set(seen)), "each grade_id has exactly one answer cell"
    assert set(tasks) <= set(seen), f"tasks without an answer cell: {set(tasks) - set(seen)}"
    checks = "\n".join(c.source for c in nb.cells if "check" in tags(c))
    for gid in tasks:
        assert f'check("{gid}"' in checks, f"no check cell for {gid}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_written_answers_are_named_think_nn_topic(path):
    # The rule for auto-graded answers (the first function graded) is in tests/test_tasks.py.
    nb = read(path)
    for cell in answer_cells(nb):
        if cell.cell_type == "markdown":
            assert re.fullmatch(rf"think_{path.stem[:2]}_[a-z0-9]+(_[a-z0-9]+)*", grade_id(cell)), \
                grade_id(cell)
    assert {t.notebook for t in all_tasks().values()} <= {p.stem for p in SOLUTIONS}


def _check_calls(nb):
    """(grade_id, notebook= or None) of every check(...) / use_or_reference(...) call in code."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
                    "check", "use_or_reference"):
                kw = {k.arg: k.value.value for k in node.keywords}
                yield node.args[0].value, kw.get("notebook")


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_check_calls_name_a_task_of_their_own_notebook(path):
    # grade_ids are unique within a notebook only: a shared one must say which notebook it means.
    nb = read(path)
    calls = list(_check_calls(nb))
    assert calls or not for_notebook(notebook_id(nb, path))
    for gid, notebook in calls:
        assert get(gid, notebook).notebook == notebook_id(nb, path), gid


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_solution_answers_agree_with_the_course_reference(path):
    nb = read(path)
    ns = _namespace(nb)
    for task in for_notebook(notebook_id(nb, path)):
        fns = tuple(ns[name] for name in task.functions)
        for seed in (0, 1, 99):
            for case in task.cases(seed):
                v = evaluate(task, case, run_case(task, fns, case))
                assert v.passed, f"{task.grade_id}, seed {seed}, {case.label}: {v.message}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_student_answers_are_unimplemented_stubs_carrying_their_tasks_points(path):
    nb = read(NOTEBOOKS / path.name)
    assert "### BEGIN SOLUTION" not in "".join(c.source for c in nb.cells)
    tasks = {t.grade_id: t for t in for_notebook(notebook_id(nb, path))}
    for cell in answer_cells(nb):
        if cell.cell_type == "code":
            assert cell.metadata["nbgrader"]["points"] == tasks[grade_id(cell)].points
    ns = _namespace(nb)
    for task in for_notebook(notebook_id(nb, path)):
        fns = tuple(ns[name] for name in task.functions)
        case = task.cases()[0]
        assert evaluate(task, case, run_case(task, fns, case)).mistake == "not_implemented"


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_setup_cell_says_how_to_fix_a_missing_course_package(path):
    (setup,) = setup_cells(read(path))
    code = ("import sys\nsys.modules['course'] = None  # as if the package were not installed\n"
            f"exec({setup.source!r})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: No module named 'course'"), done.stderr
    assert "make lab" in last and "pip install -e ." in last


def test_a_rerun_check_never_praises_the_course_reference_for_a_wrong_answer(tmp_path):
    """Notebook 02 with the classic slip (ddof=1): Run All, then the check cell again at the end
    (after the demo cells put the reference in the student's place): still no praise."""
    import nbclient

    nb = read(NOTEBOOKS / "02_forward_pass.ipynb")
    answer = next(c for c in answer_cells(nb) if grade_id(c) == "batchnorm_forward")
    answer.source = '''import numpy as np

def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-5)
    mu, var = x.mean(axis=0), x.var(axis=0, ddof=1)
    x_hat = (x - mu) / np.sqrt(var + eps)
    return gamma * x_hat + beta, {"x_hat": x_hat}
'''
    check_cell = next(c for c in nb.cells if "check" in tags(c)
                      and 'check("batchnorm_forward"' in c.source)
    nb.cells.append(nbformat.v4.new_code_cell(check_cell.source))
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    text = lambda cell: "".join(o.get("text", "") for o in cell.outputs)  # noqa: E731
    first, last = text(check_cell), text(nb.cells[-1])
    assert "ddof=1" in first and "Well done" not in first, first
    assert "course reference is checked here" in last and "Well done" not in last, last
