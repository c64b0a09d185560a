"""What the grader writes: feedback files."""


import pytest
from grade_helpers import COURSE, SOURCES, ZOO_NB

pytestmark = pytest.mark.skipif(not SOURCES, reason="no solution notebook with graded tasks yet")


def test_feedback_never_shows_hidden_inputs_and_names_statuses(zoo):
    text = (zoo["out"] / "feedback" / "infinite_loop.md").read_text()
    assert "timeout in" in text
    assert "array(" not in text and "[[" not in text
    manual = [q for q in COURSE.questions_of(ZOO_NB) if q.manual]
    for q in manual:
        assert f"{q.grade_id}: graded by hand" in (zoo["out"] / "feedback" / "full.md").read_text()
        assert zoo["rows"]["full"][q.column] == ""
