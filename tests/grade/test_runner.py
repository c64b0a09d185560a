"""Running student code: failures pinned on their question, limits, clean-up, restarts."""

import re
from pathlib import Path

import grade_helpers as gh
import pytest

from course.grade.sandbox.bwrap import probe as _sandbox_problem


@pytest.mark.parametrize("name, status", [
    ("infinite_loop", "timeout in {fns}"),
    ("os_exit", "kernel died (exit code 3) in {fns}"),
    ("sys_exit", "sys.exit in {fns}"),
    ("sys_exit_cell", "sys.exit in answer cell {gid}"),
    ("loop_cell", "timeout in answer cell {gid}"),
    ("memory_bomb", "memory limit in {fns}"),
    ("print_flood", "output limit in {fns}"),
    # pid 1 (the zygote, or bwrap's init) ignores SIGKILL from inside: only the student dies
    ("kill_zygote", "kernel died (exit code 4) in {fns}"),
    ("forge_channel", "kernel died (malformed result) in {fns}"),
])
def test_failure_has_clear_status_and_the_rest_is_graded(zoo, name, status):
    victim = gh.auto(gh.ZOO_NB)[0]
    row = zoo["rows"][name]
    want = status.format(fns=", ".join(victim.functions), gid=victim.grade_id)
    assert _without_exit_code(row["status"]) == _without_exit_code(want)
    if "exit code" in row["status"]:  # when it is known, it is the student's own exit code
        assert row["status"] == want
    assert gh.points(row, victim) == 0
    assert gh.full_marks(row, skip={victim.grade_id})


def test_cheating_inside_the_student_process_gains_nothing(zoo):
    victim = gh.auto(gh.ZOO_NB)[0]
    row = zoo["rows"]["cheat"]
    assert gh.points(row, victim) == 0
    assert gh.full_marks(row, skip={victim.grade_id})
    assert "review" in (zoo["out"] / "feedback" / "cheat.md").read_text()


def test_writes_outside_the_scratch_folder_do_not_land(zoo):
    row = zoo["rows"]["write_outside"]
    assert row["status"] == "ok" and gh.full_marks(row)
    assert sorted(p.name for p in zoo["out"].iterdir()) == [
        ".fingerprint", ".lock", ".secret", "feedback", "grades.csv"]
    assert not list(Path.cwd().glob(f"*escape_{gh.MARK}*"))
    assert not list(zoo["tmp"].rglob(f"*escape_{gh.MARK}*"))
    if _sandbox_problem() is None:  # in the sandbox even an absolute path is refused
        assert not zoo["outside"].exists()


def test_leftover_child_processes_are_killed(zoo):
    row = zoo["rows"]["leftover_child"]
    assert row["status"] == "ok" and gh.full_marks(row)
    psutil = pytest.importorskip("psutil")
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                 if p.info["cmdline"] and p.info["cmdline"][-1] in
                 {str(3000 + int(gh.MARK, 16) % 997), str(4000 + int(gh.MARK, 16) % 997)}]
    assert not leftovers


def _without_exit_code(status):
    """A forked student's exit code comes from the zygote's reply, which a heavily loaded machine
    can miss (the status then says only "kernel died"); everything else must match exactly."""
    return re.sub(r" \(exit code \d+\)", "", status)


def test_spawn_mode_grades_like_fork_mode(zoo, tmp_path):
    subs = zoo["tmp"] / "submissions"
    names = ["full", "os_exit", "print_flood", "memory_bomb", "write_outside"]
    rows, _ = gh.grade(tmp_path / "out", *(subs / f"{n}.ipynb" for n in names),
                    extra=["--no-fork", "--notebooks", gh.ZOO_NB])
    for name in names:
        spawned, forked = dict(rows[name]), dict(zoo["rows"][name])
        spawned["status"], forked["status"] = (_without_exit_code(r["status"])
                                               for r in (spawned, forked))
        assert spawned == forked, name


def test_whole_submission_timeout_covers_all_of_a_students_notebooks(two_notebook_student,
                                                                     tmp_path):
    _, second, _, grade_student = two_notebook_student
    row = grade_student("slow_student", "while True:\n    pass", ("a.ipynb", "b.ipynb"),
                        extra=["--submission-timeout", "3"])
    assert "timeout" in row["status"] and f"{second}: " in row["status"], row["status"]
    assert "timeout (whole submission)" in row["status"]
    for q in gh.auto(second):  # never reached: the student's time was used up in the first one
        assert gh.points(row, q) == 0.0
    feedback = (tmp_path / "out" / "feedback" / "slow_student.md").read_text()
    assert "whole submission" in feedback
