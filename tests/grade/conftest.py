"""Two grading batches shared by the grader's tests, each run once per session: the zoo (every
kind of broken submission, built from the notebook with the most auto-graded tasks) and the
course-wide batch (full marks, untouched student notebooks, every planted mistake).
"""

import pytest
from grade_helpers import (
    COURSE,
    SOURCES,
    ZOO_NB,
    _zoo,
    auto,
    grade,
    graded_questions,
    mistake_source,
    with_answer,
    write,
)

from course.release import student_version


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zoo")
    members, outside = _zoo(tmp)
    subs = tmp / "submissions"
    subs.mkdir()
    targets = []
    for name, nb in members.items():
        path = subs / f"{name}.ipynb"  # never the notebook's own name: found by metadata
        if isinstance(nb, str):
            path.write_text(nb)
        else:
            write(path, nb)
        targets.append(path)
    folder = subs / "folder_student"  # a folder whose file name says nothing
    write(folder / "my_copy.ipynb", members["full"])
    targets.append(folder)
    out = tmp / "out"
    rows, proc = grade(out, *targets, extra=["--notebooks", ZOO_NB])
    return {"rows": rows, "out": out, "outside": outside, "proc": proc, "tmp": tmp,
            "size": len(targets)}


@pytest.fixture(scope="session")
def course_batch(tmp_path_factory):
    """Full marks, untouched, and every planted mistake k (the k-th mistake of every task)."""
    tmp = tmp_path_factory.mktemp("course")
    folders = {"solution": {}, "untouched": {}}
    planted = {}
    deepest = max(len(COURSE.tasks[q.notebook, q.grade_id].mistakes) for q in graded_questions())
    for nb_id, sol in SOURCES.items():
        folders["solution"][nb_id] = sol
        folders["untouched"][nb_id] = student_version(sol, nb_id)
        for k in range(deepest):
            nb = sol
            for q in auto(nb_id):
                if k < len(COURSE.tasks[q.notebook, q.grade_id].mistakes):
                    nb = with_answer(nb, q.grade_id, mistake_source(q, k))
                    planted.setdefault(f"mistake_{k}", {})[q.column] = \
                        COURSE.tasks[q.notebook, q.grade_id].mistakes[k].name
            folders.setdefault(f"mistake_{k}", {})[nb_id] = nb
    targets = []
    for student, notebooks in folders.items():
        for nb_id, nb in notebooks.items():
            write(tmp / "subs" / student / f"{nb_id}.ipynb", nb)
        targets.append(tmp / "subs" / student)
    rows, _ = grade(tmp / "out", *targets,
                    extra=["--timeout", "30", "--notebooks", ",".join(SOURCES)])
    return rows, planted, tmp / "out"
