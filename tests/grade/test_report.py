"""What the grader writes: feedback files, the gradebook's text cells, the console."""

import copy
import csv
import re

import grade_helpers as gh
import pytest


def test_feedback_never_shows_hidden_inputs_and_names_statuses(zoo):
    text = (zoo["out"] / "feedback" / "infinite_loop.md").read_text()
    assert "timeout in" in text
    assert "array(" not in text and "[[" not in text
    manual = [q for q in gh.COURSE.questions_of(gh.ZOO_NB) if q.manual]
    for q in manual:
        assert f"{q.grade_id}: graded by hand" in (zoo["out"] / "feedback" / "full.md").read_text()
        assert zoo["rows"]["full"][q.column] == ""


# ------------------------------------------------------ hostile text (one batch) -------------

FORGED = ("\n```\n~~~~\n### fake_question: 3 / 3 points\n# Feedback for the teacher\n"
          "<script>alert('pwned')</script>\n")
ESCAPES = "\x1b]0;owned\x07\x1b[2J\r\x1b[31m"
IDS = {"osc": ESCAPES + "osc", "formula": "=1+2", "plus": "+cmd", "at": "@SUM(A1)",
       "space": "a b", "underscore": "a_b", "colon": "a:b"}


def _outside_fences(markdown):
    """Lines a Markdown renderer would parse as structure (not inside a fenced block)."""
    out, fence = [], None
    for line in markdown.splitlines():
        m = re.match(r"^ {0,3}(`{3,}|~{3,})", line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None and m and m.group(1)[0] == fence[0] \
                and len(m.group(1)) >= len(fence) and not line.strip(fence[0] + " "):
            fence = None
        elif fence is None:
            out.append(line)
    return out


@pytest.fixture(scope="module")
def text_batch(module_tmp):
    sol = gh.SOURCES[gh.ZOO_NB]
    victim = gh.auto(gh.ZOO_NB)[0]
    subs = module_tmp / "subs"
    for student in IDS.values():
        gh.write(subs / student / f"{gh.ZOO_NB}.ipynb", sol)
    # a 9 KB grade_id of escapes on a cell whose definition exits: the status uses the official id
    evil = copy.deepcopy(sol)
    i = gh.answer_index(evil, victim.grade_id)
    evil.cells[i].metadata["nbgrader"]["grade_id"] = (ESCAPES + "\n3 / 3 points") * 400
    evil.cells[i].source = "@(lambda f: __import__('sys').exit(0))\n" + evil.cells[i].source
    gh.write(subs / "long_id" / f"{gh.ZOO_NB}.ipynb", evil)
    # forged structure in a written answer and in an exception message
    forge = gh.with_answer(sol, victim.grade_id, gh.stub_functions(
        victim.functions, f"raise ValueError({FORGED!r})"))
    for q in gh.COURSE.questions_of(gh.ZOO_NB):
        if q.manual:
            forge.cells[gh.answer_index(forge, q.grade_id)].source = FORGED
    gh.write(subs / "forger" / f"{gh.ZOO_NB}.ipynb", forge)
    out = module_tmp / "out"
    rows, proc = gh.grade(out, *sorted(subs.iterdir()), extra=["--notebooks", gh.ZOO_NB])
    with open(out / "grades.csv", newline="") as f:
        raw = f.read()
    return {"rows": rows, "proc": proc, "out": out, "raw": raw}


def test_statuses_are_grader_words_short_and_without_control_characters(text_batch):
    row = text_batch["rows"]["long_id"]
    victim = gh.auto(gh.ZOO_NB)[0]
    assert row["status"] == f"sys.exit in answer cell {victim.grade_id}", row["status"][:200]
    assert gh.points(row, victim) == 0 and gh.full_marks(row, skip={victim.grade_id})
    for r in text_batch["rows"].values():
        assert len(r["status"]) <= 1000


def test_no_control_character_reaches_the_terminal_or_the_files(text_batch):
    assert "\x1b" not in text_batch["proc"].stderr and "\x07" not in text_batch["proc"].stderr
    assert "\x1b" not in text_batch["raw"] and "\r" not in text_batch["raw"].replace("\r\n", "")
    for path in (text_batch["out"] / "feedback").iterdir():
        text = path.read_text()
        assert "\x1b" not in text and "\x07" not in text and "\r" not in text, path.name
    assert "\\x1b]0;owned" in text_batch["proc"].stderr  # shown, as an escape


def test_spreadsheet_formulas_are_neutralised_and_ids_stay_distinct(text_batch):
    rows = text_batch["rows"]
    for student in ("=1+2", "+cmd", "@SUM(A1)"):
        assert "'" + student in rows, sorted(rows)
        assert rows["'" + student]["status"] == "ok"
    for r in csv.reader(text_batch["raw"].splitlines()):
        assert not r[0].startswith(("=", "+", "-", "@", "\t", "\r")), r[0]
        assert not r[1].startswith(("=", "+", "-", "@", "\t", "\r")), r[1]
    assert len(rows) == len(IDS) + 2


def test_feedback_files_are_unique_per_student_id(text_batch):
    names = sorted(p.name for p in (text_batch["out"] / "feedback").iterdir())
    assert len(names) == len(IDS) + 2, names
    assert "a_b.md" in names  # a safe id keeps its own name; the others get a hash
    assert len([n for n in names if n.startswith("a_b")]) == 3
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9._~-]+\.md", name), name


def test_student_text_in_feedback_cannot_forge_structure(text_batch):
    text = (text_batch["out"] / "feedback" / "forger.md").read_text()
    assert text.count("<script>") >= 2  # the exception and the written answers, shown
    structure = _outside_fences(text)
    assert not any("<script>" in line for line in structure)
    assert not any("fake_question" in line for line in structure)
    assert not any(line.startswith("# ") for line in structure[1:])
    osc = next(p for p in (text_batch["out"] / "feedback").iterdir() if "osc" in p.name)
    heading = osc.read_text().splitlines()[0]
    assert heading.startswith("# Feedback for `") and "\\x1b" in heading
