"""Points: hidden seeds, full marks for the solutions, zero for untouched, planted mistakes."""


import grade_helpers as gh


def test_untouched_student_notebook_scores_zero_with_status_ok(zoo):
    row = zoo["rows"]["untouched"]
    assert row["status"] == "ok"
    assert float(row["total"]) == 0 and float(row["max_total"]) > 0
    text = (zoo["out"] / "feedback" / "untouched.md").read_text()
    assert "not implemented yet" in text


def _ok_row(course_batch, student):
    """The course batch's row of `student`, whose notebooks were all read and run."""
    row = course_batch[0][student]
    assert row["status"] == "ok", (student, row["status"])
    return row


def test_every_solution_gets_full_marks(course_batch):
    row = _ok_row(course_batch, "solution")
    for q in gh.graded_questions():
        assert gh.points(row, q) == q.points, q.column


def test_every_untouched_student_notebook_scores_zero(course_batch):
    row = _ok_row(course_batch, "untouched")
    assert all(gh.points(row, q) == 0 for q in gh.graded_questions())


def test_each_planted_mistake_costs_exactly_its_question_and_is_named(course_batch):
    _, planted, out = course_batch
    assert planted, "no task declares a mistake"
    for student, mistakes in planted.items():
        row = _ok_row(course_batch, student)
        text = (out / "feedback" / f"{student}.md").read_text()
        for q in gh.graded_questions():
            if q.column in mistakes:
                assert gh.points(row, q) < q.points, (student, q.column)
                message = next(m.message for m in gh.COURSE.tasks[q.notebook, q.grade_id].mistakes
                               if m.name == mistakes[q.column])
                assert message in text, (student, q.column, mistakes[q.column])
            else:
                assert gh.points(row, q) == q.points, (student, q.column)


def test_hidden_seeds_are_secret_dependent_and_never_public():
    from course.grade.grading import hidden_seed
    from course.tasks.base import PUBLIC_SEED
    seeds = {hidden_seed(s, q.column) for s in ("a", "b") for q in gh.graded_questions()}
    assert len(seeds) == 2 * len(gh.graded_questions()) and PUBLIC_SEED not in seeds


FORGE_BAD_NPZ = """\
import json, os, struct
header = json.dumps({"event": "question", "gid": GID, "cases": [], "npz": True}).encode()
payload = b"PK\\x03\\x04" + b"\\x00" * 64  # a zip signature, then nothing a zip holds
frame = struct.pack(">Q", len(header)) + header + struct.pack(">Q", len(payload)) + payload
for fd in range(3, 64):
    try:
        os.write(fd, frame)
    except OSError:
        pass
return None"""


def test_a_notebook_that_breaks_the_grader_costs_only_its_own_questions(two_notebook_student):
    first, second, victim, grade_student = two_notebook_student
    row = grade_student("forger", FORGE_BAD_NPZ.replace("GID", repr(victim.grade_id)))
    assert gh.points(row, victim) == 0
    assert all(gh.points(row, q) == q.points for q in gh.auto(second)), row
    assert second not in row["status"] and row["status"].startswith(f"{first}: "), row["status"]
