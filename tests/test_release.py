"""course.release: stubs, the points it writes, and --check on stale student notebooks."""

import pytest

from course import release
from course.notebook import NOTEBOOKS, notebook_id, read, solution_paths, tags

SOLUTIONS = solution_paths()


def test_release_stubs_keep_indentation_and_handle_written_answers():
    src = ('def f(x):\n    """Doc."""\n'
           "    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n")
    new, n = release.stub_source(src, "code", "f_task")
    assert n == 1
    assert new == ('def f(x):\n    """Doc."""\n    # YOUR CODE HERE\n'
                   '    raise NotImplementedError("f: not implemented yet")\n')
    md, _ = release.stub_source("Answer:\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION",
                                "markdown", "think_x")
    assert md == "Answer:\nYOUR ANSWER HERE"
    two = src + src.replace("def f(", "def f_backward(")  # a forward and its backward, one task
    new, n = release.stub_source(two, "code", "f_task")
    assert n == 2 and '"f: not' in new and '"f_backward: not implemented yet"' in new
    top, _ = release.stub_source("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "code", "t")
    assert '"t: not implemented yet"' in top  # no function around it: the task's name
    with pytest.raises(ValueError, match="unbalanced"):
        release.stub_source("### BEGIN SOLUTION\nx = 1\n", "code", "t")


def test_release_check_fails_with_a_readable_diff_when_a_student_copy_is_stale(
        tmp_path, monkeypatch, capsys):
    import shutil
    for path in SOLUTIONS:
        shutil.copy(NOTEBOOKS / path.name, tmp_path / path.name)
    monkeypatch.setattr(release, "NOTEBOOKS", tmp_path)
    assert release.main(["--check"]) == 0
    for path in SOLUTIONS:  # every one stale: the message names them all, in short lines
        stale = tmp_path / path.name
        stale.write_text(stale.read_text().replace('"cells": [', '"cells": [\n', 1))
    stale = tmp_path / SOLUTIONS[0].name
    stale.write_text(stale.read_text().replace("# YOUR CODE HERE", "# hand-edited", 1))
    (tmp_path / "99_stray.ipynb").write_text("{}")
    capsys.readouterr()
    assert release.main(["--check"]) == 1
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(ln.startswith("-") and "# hand-edited" in ln for ln in lines), out
    assert any(ln.startswith("+") and "# YOUR CODE HERE" in ln for ln in lines), out
    assert "99_stray.ipynb: in notebooks/ but has no source" in out
    assert "Run: python -m course.release" in out
    assert max(len(ln) for ln in lines if not ln.startswith(("+", "-", " "))) <= 90
    assert release.main([]) == 0  # regenerating repairs it and removes the stray file
    assert not (tmp_path / "99_stray.ipynb").exists()
    assert release.main(["--check"]) == 0


def test_release_takes_the_points_of_auto_graded_answers_from_their_task(monkeypatch, capsys):
    import dataclasses
    tasks_of = release.for_notebook
    monkeypatch.setattr(release, "for_notebook", lambda nb_id: [
        dataclasses.replace(t, points=t.points + 1) for t in tasks_of(nb_id)])
    assert release.main(["--check"]) == 1  # a Task's points changed: notebooks/ is stale
    assert '"points": ' in capsys.readouterr().out


def test_student_copies_lock_their_setup_and_check_cells_and_only_those():
    for path in SOLUTIONS:
        nb = read(NOTEBOOKS / path.name)
        locked = [c for c in nb.cells
                  if c.metadata.get("editable") is False or c.metadata.get("deletable") is False]
        want = [c for c in nb.cells if tags(c) & {"setup", "check"}]
        assert want and [c.id for c in locked] == [c.id for c in want], path.name
        for cell in locked:  # JupyterLab refuses to edit or delete exactly these
            assert cell.metadata["editable"] is False and cell.metadata["deletable"] is False
        # the solutions themselves stay editable: they are authored by hand
        assert not any("editable" in c.metadata for c in read(path).cells), path.name


def test_a_copied_notebook_is_refused_with_its_right_name_and_the_recipe(
        tmp_path, monkeypatch, capsys):
    import shutil

    from course import notebook
    shutil.copy(SOLUTIONS[0], tmp_path / SOLUTIONS[0].name)
    shutil.copy(SOLUTIONS[1], tmp_path / "98_copied.ipynb")  # keeps SOLUTIONS[1]'s id
    monkeypatch.setattr(notebook, "SOLUTIONS", tmp_path)
    assert release.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert f"98_copied.ipynb: its metadata says it is notebook {SOLUTIONS[1].stem!r}" in err
    assert "'98_copied'" in err and release.RECIPE in err and "--new NN_topic" in err
    assert max(len(line) for line in err.splitlines()) <= 90


@pytest.fixture
def new_notebook(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(release, "SOLUTIONS", tmp_path)
    assert release.main(["--new", "98_layer_scale"]) == 0
    return tmp_path / "98_layer_scale.ipynb", capsys.readouterr().out


def test_new_starts_a_notebook_that_follows_every_skeleton_rule(new_notebook):
    import test_notebooks as rules
    path, _ = new_notebook
    nb = read(path)
    assert notebook_id(nb) == "98_layer_scale" and len({c.id for c in nb.cells}) == len(nb.cells)
    for rule in (rules.test_notebook_follows_the_course_skeleton,
                 rules.test_answer_cells_carry_grading_metadata_matching_the_registry,
                 rules.test_written_answers_are_named_think_nn_topic,
                 rules.test_notebook_is_committed_without_outputs,
                 rules.test_setup_cell_says_how_to_fix_a_missing_course_package):
        rule(path)
    student = release.student_version(nb, "98_layer_scale")  # release accepts it as it is
    assert "YOUR ANSWER HERE" in "".join(c.source for c in student.cells)


def test_new_notebooks_have_their_own_ids_and_never_replace_a_notebook(new_notebook, capsys):
    path, out = new_notebook
    first = {c.id for c in read(path).cells}
    assert release.main(["--new", "98_other_topic"]) == 2  # the number is taken
    assert "98_layer_scale.ipynb already has number 98" in capsys.readouterr().err
    assert release.main(["--new", "99_other_topic"]) == 0
    assert not first & {c.id for c in read(path.with_name("99_other_topic.ipynb")).cells}
    assert release.main(["--new", "9_Bad Name"]) == 2
    assert release.RECIPE in out and "TASKS" in out and "tests/test_tasks.py" in out
    assert max(len(line) for line in out.splitlines()) <= 90


def test_an_answer_without_a_task_names_the_tasks_list_and_the_recipe(monkeypatch, capsys):
    monkeypatch.setattr(release, "for_notebook", lambda nb_id: [])  # as if TASKS were not filled
    assert release.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "has no Task in course/tasks" in err and "TASKS list of" in err
    assert "course/tasks/nb01.py" in err and release.RECIPE in err
    assert max(len(line) for line in err.splitlines()) <= 90
