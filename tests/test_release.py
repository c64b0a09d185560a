"""course.release: stubs, the points it writes, and --check on stale student notebooks."""

import pytest

from course import release
from course.notebook import NOTEBOOKS, solution_paths

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
