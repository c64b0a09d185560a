"""The command line: batches, resume, --list, a student's own score table, signals, secret."""

import csv
import io
import os
import shutil
import signal
import subprocess
import time

import grade_helpers as gh
import pytest

from course.grade.cli import in_shard
from course.release import student_version


def test_batch_mixing_everything_completes(zoo):
    rows = zoo["rows"]
    assert len(rows) == zoo["size"], sorted(rows)
    assert f"graded {zoo['size']} students" in zoo["proc"].stderr


def test_resume_skips_students_already_graded(zoo, tmp_path):
    out = tmp_path / "out"
    subs = zoo["tmp"] / "submissions"
    gh.grade(out, subs / "full.ipynb", extra=["--notebooks", gh.ZOO_NB])
    rows, proc = gh.grade(out, subs / "full.ipynb", subs / "untouched.ipynb",
                       extra=["--resume", "--notebooks", gh.ZOO_NB])
    assert sorted(rows) == ["full", "untouched"]
    assert "graded 1 students" in proc.stderr and "1 skipped" in proc.stderr


def test_list_shows_every_question_with_kind():
    proc = subprocess.run([gh.PY, "-m", "course.grade", "--list"], capture_output=True, text=True,
                          check=True)
    for q in gh.COURSE.questions:
        line = next(ln for ln in proc.stdout.splitlines()
                    if f" {q.grade_id} " in f" {ln} " and q.notebook in ln)
        assert q.notebook in line and ("by hand" if q.manual else "auto") in line
        assert all(f in line for f in q.functions)


def test_student_sees_a_score_table(tmp_path):
    nb_id = gh.ZOO_NB
    path = gh.write(tmp_path / f"{nb_id}.ipynb", student_version(gh.SOURCES[nb_id], nb_id))
    proc = subprocess.run([gh.PY, "-m", "course.grade", str(path), *gh.LIMITS], capture_output=True,
                          text=True, check=True)
    assert "total (auto-graded)" in proc.stdout and "not implemented yet" in proc.stdout
    assert not (tmp_path / "grades.csv").exists()


# ------------------------------------------------ grades never lost or torn -----------------

def _students(tmp, n, prefix="s"):
    """n submissions holding the solution of the zoo's notebook."""
    return [gh.write(tmp / "subs" / f"{prefix}{k:02d}.ipynb", gh.SOURCES[gh.ZOO_NB])
            for k in range(n)]


def _csv_is_whole(path):
    data = path.read_bytes()
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert data.endswith(b"\n") and all(len(r) == len(rows[0]) for r in rows), data[-200:]
    return rows


def test_resume_regrades_a_row_cut_in_the_middle(tmp_path):
    subs = _students(tmp_path, 3)
    out = tmp_path / "out"
    rows, _ = gh.grade(out, *subs, extra=["--notebooks", gh.ZOO_NB])
    data = (out / "grades.csv").read_bytes()
    last = data.rstrip(b"\r\n").rsplit(b"\n", 1)[1].split(b",")[0].decode()
    (out / "grades.csv").write_bytes(data[:-9])  # killed in the middle of the last row
    again, proc = gh.grade(out, *subs, extra=["--notebooks", gh.ZOO_NB, "--resume"])
    assert f"regrading {last}" in proc.stderr and "graded 1 students" in proc.stderr
    assert again == rows
    body = _csv_is_whole(out / "grades.csv")[1:]
    assert sorted(r[0] for r in body) == sorted(rows)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_cancels_queued_students_keeps_rows_and_leaves_nothing(tmp_path, sig):
    subs = _students(tmp_path, 12)
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    scratch.mkdir()
    cmd = [gh.PY, "-m", "course.grade", *map(str, subs), "--out", str(out), "--jobs", "1",
           *gh.LIMITS, "--notebooks", gh.ZOO_NB]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(scratch)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not (out / "grades.csv").exists()
                                           or (out / "grades.csv").read_bytes().count(b"\n") < 2):
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig.value, err
    lines = [ln for ln in err.splitlines() if ln.startswith("stopped by")]
    assert len(lines) == 1 and sig.name in lines[0] and "--resume" in lines[0], err
    body = _csv_is_whole(out / "grades.csv")[1:]
    assert 1 <= len(body) < len(subs)
    assert len(list((out / "feedback").iterdir())) == len(body)
    assert list(scratch.iterdir()) == []  # no scratch folder, no zygote home left behind
    rows, resumed = gh.grade(out, *subs, extra=["--notebooks", gh.ZOO_NB, "--resume"])
    assert sorted(rows) == sorted(p.stem for p in subs)
    assert f"graded {len(subs) - len(body)} students" in resumed.stderr


def test_the_secret_is_never_taken_from_the_command_line(tmp_path):
    (sub,) = _students(tmp_path, 1)
    out = tmp_path / "out"
    proc = subprocess.run([gh.PY, "-m", "course.grade", str(sub), "--out", str(out),
                           "--secret", "hunter2"], capture_output=True, text=True)
    assert proc.returncode == 2 and not out.exists()
    assert "COURSE_GRADE_SECRET" in proc.stderr and "--secret-file" in proc.stderr
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2\n")
    by_file, _ = gh.grade(tmp_path / "a", sub, extra=["--notebooks", gh.ZOO_NB,
                                                  "--secret-file", str(secret)])
    by_env, _ = gh.grade(tmp_path / "b", sub, extra=["--notebooks", gh.ZOO_NB],
                      env={"COURSE_GRADE_SECRET": "hunter2"})
    assert by_file == by_env
    assert not (tmp_path / "a" / ".secret").exists() and not (tmp_path / "b" / ".secret").exists()


# --------------------------------------------------------- shards and merge -----------------

def test_shards_split_students_stably_and_merge_into_one_gradebook(tmp_path):
    subs = _students(tmp_path, 6)
    env = {"COURSE_GRADE_SECRET": "one secret for every shard"}
    outs, seen = [], {}
    for k in (1, 2):
        out = tmp_path / f"shard{k}"
        rows, _ = gh.grade(out, *subs, extra=["--notebooks", gh.ZOO_NB, "--shard", f"{k}/2"],
                           env=env)
        assert sorted(rows) == sorted(p.stem for p in subs if in_shard(p.stem, (k, 2)))
        assert not set(rows) & set(seen)  # every student in exactly one shard
        seen.update(rows)
        outs.append(out)
    assert sorted(seen) == sorted(p.stem for p in subs)
    merged = tmp_path / "merged"
    proc = subprocess.run([gh.PY, "-m", "course.grade", "merge", *map(str, outs), "--out",
                           str(merged)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    with open(merged / "grades.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows == seen and all(r["status"] == "ok" for r in rows.values())
    assert sorted(p.stem for p in (merged / "feedback").iterdir()) == sorted(seen)


def test_merge_refuses_duplicates_other_columns_and_torn_rows(tmp_path):
    (sub,) = _students(tmp_path, 1)
    a, b = tmp_path / "a", tmp_path / "b"
    gh.grade(a, sub, extra=["--notebooks", gh.ZOO_NB], env={"COURSE_GRADE_SECRET": "s"})
    shutil.copytree(a, b)
    header, rest = (b / "grades.csv").read_text().split("\n", 1)
    (b / "grades.csv").write_text(header.replace("total", "points", 1) + "\n" + rest)

    def merge(*outs):
        return subprocess.run([gh.PY, "-m", "course.grade", "merge", *map(str, outs), "--out",
                               str(tmp_path / "m")], capture_output=True, text=True)

    dup = merge(a, a)
    assert dup.returncode != 0 and "in both" in dup.stderr
    cols = merge(a, b)
    assert cols.returncode != 0 and "other columns" in cols.stderr
    (a / "grades.csv").write_bytes((a / "grades.csv").read_bytes()[:-5])
    torn = merge(a)
    assert torn.returncode != 0 and "cut off" in torn.stderr
    assert not (tmp_path / "m" / "grades.csv").exists()


def test_shard_needs_a_shared_secret_and_a_valid_k_of_n(tmp_path):
    (sub,) = _students(tmp_path, 1)
    env = {k: v for k, v in os.environ.items() if k != "COURSE_GRADE_SECRET"}
    for shard, message in (("1/2", "COURSE_GRADE_SECRET"), ("3/2", "1 <= K <= N"),
                           ("x", "K/N")):
        proc = subprocess.run([gh.PY, "-m", "course.grade", str(sub), "--out", str(tmp_path / "o"),
                               "--shard", shard], capture_output=True, text=True, env=env)
        assert proc.returncode == 2 and message in proc.stderr, (shard, proc.stderr)


@pytest.mark.parametrize("after", [0.5, 2.5])  # while its process starts; in its answer cell
def test_a_signal_ends_a_running_student_without_writing_its_row(tmp_path, after):
    from grade_helpers import answer_index, auto, with_answer
    nb = gh.SOURCES[gh.ZOO_NB]
    gid = auto(gh.ZOO_NB)[0].grade_id
    source = nb.cells[answer_index(nb, gid)].source
    sub = gh.write(tmp_path / "slow.ipynb", with_answer(
        nb, gid, "import time\ntime.sleep(4)  # still running when the signal comes\n" + source))
    out = tmp_path / "out"
    proc = subprocess.Popen([gh.PY, "-m", "course.grade", str(sub), "--out", str(out), *gh.LIMITS,
                             "--notebooks", gh.ZOO_NB], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (out / "grades.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the gradebook exists: the grader is up and handles signals
    time.sleep(after)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM.value, err
    assert "stopped by SIGTERM" in err and "--resume" in err, err
    # Waiting for the student would have written its row (status ok or timeout): it was ended.
    assert _csv_is_whole(out / "grades.csv")[1:] == []
    rows, _ = gh.grade(out, sub, extra=["--notebooks", gh.ZOO_NB, "--resume"])
    assert list(rows) == ["slow"]


# ------------------------------------------------ instructor slips refused ------------------

def _run(*args, cwd=None, env=None):
    return subprocess.run([gh.PY, "-m", "course.grade", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300,
                          env=None if env is None else {**os.environ, **env})


def test_a_second_grader_on_the_same_out_is_refused_and_the_first_keeps_its_rows(tmp_path):
    nb = gh.SOURCES[gh.ZOO_NB]
    gid = gh.auto(gh.ZOO_NB)[0].grade_id
    source = nb.cells[gh.answer_index(nb, gid)].source
    (fast,) = _students(tmp_path, 1)
    slow = gh.write(tmp_path / "slow.ipynb", gh.with_answer(
        nb, gid, "import time\ntime.sleep(50)  # still running while a second grader starts\n"
        + source))
    out = tmp_path / "out"
    first = subprocess.Popen([gh.PY, "-m", "course.grade", str(fast), str(slow), "--out",
                              str(out), "--jobs", "1", *gh.LIMITS, "--timeout", "60",
                              "--notebooks", gh.ZOO_NB], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not (out / "grades.csv").exists()
                                           or (out / "grades.csv").read_bytes().count(b"\n") < 2):
        time.sleep(0.05)  # the fast student's row is written; the slow one is running
    second = _run(fast, slow, "--out", out, *gh.LIMITS, "--notebooks", gh.ZOO_NB, "--resume")
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)
    assert second.returncode == 2 and "another grader" in second.stderr, second.stderr
    assert [r[0] for r in _csv_is_whole(out / "grades.csv")[1:]] == [fast.stem]


def test_a_fresh_run_never_overwrites_graded_rows(tmp_path):
    (sub,) = _students(tmp_path, 1)
    out = tmp_path / "out"
    gh.grade(out, sub, extra=["--notebooks", gh.ZOO_NB])
    before = (out / "grades.csv").read_bytes()
    again = _run(sub, "--out", out, "--notebooks", gh.ZOO_NB)
    assert again.returncode == 2 and "--resume" in again.stderr, again.stderr
    assert (out / "grades.csv").read_bytes() == before


def _changed_course(tmp_path):
    """A copy of solutions/ whose graded notebook has one more setup line: another course."""
    import nbformat

    from course import notebook as nbtools
    folder = tmp_path / "solutions-changed"
    shutil.copytree(gh.COURSE.solutions, folder)
    path = next(folder.glob(f"{gh.ZOO_NB}.ipynb"))
    nb = nbformat.read(str(path), as_version=4)
    setup = nbtools.setup_cells(nb)[0]
    setup.source += "\nEXTRA_SETUP = 1  # the course changed\n"
    nbformat.write(nb, str(path))
    return folder


def test_resume_refuses_another_shard(tmp_path):
    subs = _students(tmp_path, 4)
    env = {"COURSE_GRADE_SECRET": "s"}
    k = next(k for k in (1, 2) if any(in_shard(p.stem, (k, 2)) for p in subs))
    out = tmp_path / "out"
    gh.grade(out, *subs, extra=["--notebooks", gh.ZOO_NB, "--shard", f"{k}/2"], env=env)
    other = _run(*subs, "--out", out, "--resume", "--notebooks", gh.ZOO_NB, "--shard",
                 f"{3 - k}/2", env=env)
    assert other.returncode == 2 and f"holds shard {k}/2, not {3 - k}/2" in other.stderr, \
        other.stderr


@pytest.mark.parametrize("change", ["secret", "course"])
def test_resume_and_merge_refuse_rows_of_another_secret_or_course(tmp_path, change):
    subs = _students(tmp_path, 2)
    env = {"COURSE_GRADE_SECRET": "first"}
    a, b = tmp_path / "a", tmp_path / "b"
    gh.grade(a, subs[0], extra=["--notebooks", gh.ZOO_NB], env=env)
    other = {"secret": (["--notebooks", gh.ZOO_NB], {"COURSE_GRADE_SECRET": "second"}),
             "course": (["--notebooks", gh.ZOO_NB, "--solutions", _changed_course(tmp_path)],
                        env)}[change]
    before = (a / "grades.csv").read_bytes()
    resumed = _run(*subs, "--out", a, "--resume", *other[0], env=other[1])
    word = {"secret": "another secret", "course": "another version of the course"}[change]
    assert resumed.returncode == 2 and word in resumed.stderr, resumed.stderr
    assert (a / "grades.csv").read_bytes() == before
    gh.grade(b, subs[1], extra=list(map(str, other[0])), env=other[1])
    merged = subprocess.run([gh.PY, "-m", "course.grade", "merge", str(a), str(b), "--out",
                             str(tmp_path / "m")], capture_output=True, text=True)
    assert merged.returncode != 0 and word in merged.stderr, merged.stderr
    assert not (tmp_path / "m" / "grades.csv").exists()


def test_paths_that_look_like_options_are_refused(tmp_path):
    (sub,) = _students(tmp_path, 1)
    trap = tmp_path / f"--notebooks={gh.ZOO_NB}"  # a student folder, as a bare * passes it
    trap.mkdir()
    gh.write(trap / f"{gh.ZOO_NB}.ipynb", gh.SOURCES[gh.ZOO_NB])
    out = tmp_path / "out"
    proc = _run(trap.name, sub, "--out", out, cwd=tmp_path)
    assert proc.returncode == 2 and "--" in proc.stderr and "./NAME" in proc.stderr, proc.stderr
    assert not out.exists()
    after = _run("--out", out, *gh.LIMITS, "--notebooks", gh.ZOO_NB, "--", trap.name, sub,
                 cwd=tmp_path)  # after `--`, the same name is a submission
    assert after.returncode == 0, after.stderr
    with open(out / "grades.csv", newline="") as f:
        assert sorted(r["student"] for r in csv.DictReader(f)) == sorted(
            ["'" + trap.name, sub.stem])  # a spreadsheet never evaluates the id


@pytest.mark.parametrize("where", ["equal", "inside", "file"])
def test_out_inside_a_submission_or_a_file_is_refused(tmp_path, where):
    folder = tmp_path / "subs" / "alice"
    nb = gh.write(folder / f"{gh.ZOO_NB}.ipynb", gh.SOURCES[gh.ZOO_NB])
    out = {"equal": folder, "inside": folder / "grading", "file": nb}[where]
    before = nb.read_bytes()
    proc = _run(folder, "--out", out, "--notebooks", gh.ZOO_NB)
    said = "a file, not a folder" if where == "file" else "inside the submission"
    assert proc.returncode == 2 and said in proc.stderr, proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == [nb.name] and nb.read_bytes() == before
