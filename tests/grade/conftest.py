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
    stub_functions,
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


@pytest.fixture
def two_notebook_student(tmp_path):
    """Grade one student of the first two graded notebooks, whose first notebook's first
    auto-graded answer defines its functions with a given body and whose second is solved.

    Returns (first, second, victim, grade_student): `grade_student(name, body, file_names, extra)`
    returns the student's row, feedback in tmp_path / "out".
    """
    first, second = sorted(SOURCES)[:2]
    victim = auto(first)[0]

    def grade_student(name, body, file_names=None, extra=()):
        file_names = file_names or (f"{first}.ipynb", f"{second}.ipynb")
        folder = tmp_path / "subs" / name
        write(folder / file_names[0], with_answer(SOURCES[first], victim.grade_id,
                                                  stub_functions(victim.functions, body)))
        write(folder / file_names[1], SOURCES[second])
        rows, _ = grade(tmp_path / "out", folder,
                        extra=["--notebooks", f"{first},{second}", *extra])
        return rows[name]

    return first, second, victim, grade_student
