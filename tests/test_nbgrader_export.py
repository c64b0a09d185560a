"""The nbgrader course source, graded by real nbgrader: generate the assignment, autograde a
perfect, a blank and a wrong student, read the gradebook. nbgrader runs in a throwaway venv in
.cache/, built once per change of its inputs and reused."""

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from cached_venv import ROOT, cached_venv, run

from course import nbgrader_export
from course.tasks import all_tasks

NBGRADER = "nbgrader==0.9.6"
INPUTS = ["requirements.txt", "pyproject.toml"]  # requirements.txt installs the course (-e .)
ASSIGNMENT = nbgrader_export.ASSIGNMENT
TOTAL = sum(t.points for t in all_tasks().values())
# The classic mistake (N - 1 in the variance) in notebook 02's exercise: its 3 points are lost.
WRONG = ("02_forward_pass", "batchnorm_forward", '''\
def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-5)
    x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0, ddof=1) + eps)
    return gamma * x_hat + beta, {}
''')
WRONG_SUBMITS = "0[23]_*"  # the wrong student's notebooks: 02 with the slip, 03 solved
# What nbgrader cannot stop: student code runs in the kernel that later runs the tests.
TAMPER = "import course.checks\ncourse.checks.assert_passes = lambda *args, **kwargs: None\n\n"
GRADEBOOK = f'''\
import json
from nbgrader.api import Gradebook
with Gradebook("sqlite:///gradebook.db") as gb:
    print(json.dumps({{s.student.id: [s.code_score, s.max_code_score]
                      for s in gb.assignment_submissions("{ASSIGNMENT}")}}))
'''


def test_every_task_gets_a_locked_test_cell_with_its_points_and_hidden_cases():
    files = nbgrader_export.build(secret="s")
    tests = {}
    for rel, text in files.items():
        if rel.endswith(".ipynb"):
            nb = nbformat.reads(text, as_version=4)
            for cell in nb.cells:
                meta = cell.metadata.get("nbgrader", {})
                if "setup" in cell.metadata.get("tags", []) or "check" in cell.metadata.get(
                        "tags", []):
                    assert meta["locked"] and not meta["grade"] and meta["grade_id"], rel
                if meta.get("grade") and cell.cell_type == "code":
                    tests[(nb.metadata["course"]["notebook"], meta["grade_id"])] = (meta, cell)
    assert set(tests) == {(nb, f"test_{gid}") for nb, gid in all_tasks()}
    for (nb, gid), (meta, cell) in tests.items():
        task = all_tasks()[(nb, gid.removeprefix("test_"))]
        assert meta["locked"] and not meta["solution"] and meta["points"] == task.points
        public, hidden = cell.source.split(nbgrader_export.HIDDEN_BEGIN)
        assert "seed=" not in public and re.search(r"seed=\d+\)\n### END HIDDEN TESTS$", hidden)


def _export(cwd, *args, env=None):
    """`python -m course.nbgrader_export nbgrader-course ARGS` run in `cwd`, as a person would."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "course.nbgrader_export", "nbgrader-course",
                           *args], cwd=cwd, env=env, capture_output=True, text=True)


def _hidden_seeds(folder):
    return sorted(re.findall(r"seed=(\d+)\)", "".join(
        p.read_text() for p in sorted(folder.glob("nbgrader-course/source/*/*.ipynb")))))


def test_the_secret_comes_from_a_file_or_the_environment_never_the_command_line(tmp_path):
    refused = _export(tmp_path, "--secret", "s3cret")
    assert refused.returncode == 2 and "refusing --secret" in refused.stderr
    assert "COURSE_GRADE_SECRET" in refused.stderr and "--secret-file" in refused.stderr
    assert not (tmp_path / "nbgrader-course").exists()
    runs = {}
    for name, args, env in (("file", ["--secret-file", "../secret"], {}),
                            ("env", [], {"COURSE_GRADE_SECRET": "s3cret"}),
                            ("other", [], {"COURSE_GRADE_SECRET": "other"})):
        (tmp_path / name).mkdir()
        (tmp_path / "secret").write_text("s3cret\n")
        done = _export(tmp_path / name, *args, env=env)
        assert done.returncode == 0, done.stderr
        assert max(len(line) for line in done.stdout.splitlines()) <= 90, done.stdout
        runs[name] = _hidden_seeds(tmp_path / name)
    assert runs["file"] and runs["file"] == runs["env"] != runs["other"]


def _readme_install_line():
    """The README's line that installs the course and nbgrader, meant to work from any folder."""
    readme = (ROOT / "README.md").read_text()
    line = re.search(r"^\(cd \"\$COURSE\" && .*$", readme, re.MULTILINE).group(0)
    assert NBGRADER in line, f"README installs another nbgrader than the tested {NBGRADER}"
    return line


@pytest.fixture(scope="module")
def nbgrader_env(tmp_path_factory):
    line = _readme_install_line()

    def build(py, env):  # the README's line, run from a folder that is not the repository
        elsewhere = tmp_path_factory.mktemp("elsewhere")
        run(["bash", "-c", line.replace("pip install", "pip install -q")],
            {**env, "COURSE": str(ROOT)}, cwd=elsewhere)
    return cached_venv("nbgrader", INPUTS, build, extra_key=line)


def _answer(cell):
    """What a student who solved the exercise hands in: the solution without its markers."""
    return "\n".join(ln for ln in cell.source.splitlines()
                     if not ln.strip().startswith(("### BEGIN SOLUTION", "### END SOLUTION")))


def _submit(course, student, replace, notebooks="*"):
    """Copy the released notebooks to submitted/<student>/, with `replace(nb_id, cell)` as the
    source of each answer cell (None: leave the stub)."""
    target = course / "submitted" / student / ASSIGNMENT
    target.mkdir(parents=True)
    for path in sorted((course / "release" / ASSIGNMENT).glob(f"{notebooks}.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("solution"):
                new = replace(path.stem, cell)
                cell.source = cell.source if new is None else new
        nbformat.write(nb, target / path.name)


# The first of these builds nbgrader's venv and runs autograde (minutes): a larger limit.
def SLOW(test):  # noqa: N802 - reads as a marker
    return pytest.mark.slow(pytest.mark.timeout(1800)(test))


@pytest.fixture(scope="module")
def graded(nbgrader_env, tmp_path_factory):
    """The course folder after autograde, and {student: (code score, max code score)}."""
    py, env = nbgrader_env
    course = tmp_path_factory.mktemp("nbgrader-course")
    secret = course.parent / "secret"
    secret.write_text("test\n")
    assert nbgrader_export.main([str(course), "--secret-file", str(secret), "--timeout", "60"]) == 0
    nbgrader = [py.with_name("nbgrader")]
    run([*nbgrader, "generate_assignment", ASSIGNMENT], env, cwd=course)
    sources = {p.stem: {c.metadata["nbgrader"]["grade_id"]: _answer(c)
                        for c in nbformat.read(p, as_version=4).cells
                        if c.metadata.get("nbgrader", {}).get("solution")}
               for p in (course / "source" / ASSIGNMENT).glob("*.ipynb")}

    def solved(nb_id, cell):
        return sources[nb_id][cell.metadata["nbgrader"]["grade_id"]]

    def wrong(nb_id, cell):
        if (nb_id, cell.metadata["nbgrader"]["grade_id"]) == WRONG[:2]:
            return WRONG[2]
        return solved(nb_id, cell)

    def tamper(nb_id, cell):
        if (nb_id, cell.metadata["nbgrader"]["grade_id"]) == WRONG[:2]:
            return TAMPER + cell.source  # the stub, still raising NotImplementedError
        return None

    _submit(course, "perfect", solved)
    _submit(course, "blank", lambda nb_id, cell: None)
    # The notebook with the slip and one solved beside it (more would be the perfect student's
    # notebooks executed again).
    _submit(course, "wrong", wrong, notebooks=WRONG_SUBMITS)
    _submit(course, "tamper", tamper, notebooks=WRONG[0])  # one notebook: the others are missing
    done = run([*nbgrader, "autograde", ASSIGNMENT], env, cwd=course, timeout=1200)
    scores = json.loads(run([py, "-c", GRADEBOOK], env, cwd=course).stdout)
    return course, {s: tuple(v) for s, v in scores.items()}, done.stdout + done.stderr


@SLOW
def test_autograde_awards_every_point_to_the_perfect_student_and_none_to_the_blank(graded):
    _, scores, _ = graded
    # notebooks 02-07; a change here is a change of the gradebook
    assert TOTAL == 41, ("the course's auto-graded points changed: update this number and the "
                         "README's counts (README, 'Adding a notebook or an exercise')")
    assert scores["perfect"] == (TOTAL, TOTAL)
    assert scores["blank"] == (0, TOTAL)


@SLOW
def test_autograde_takes_off_exactly_the_wrong_exercise_with_the_course_message(graded):
    course, scores, _ = graded
    lost = all_tasks()[WRONG[:2]].points
    submitted = sum(t.points for t in all_tasks().values()
                    if fnmatch.fnmatch(t.notebook, WRONG_SUBMITS))
    assert lost < submitted and scores["wrong"] == (submitted - lost, TOTAL)
    nb = nbformat.read(course / "autograded" / "wrong" / ASSIGNMENT / f"{WRONG[0]}.ipynb", 4)
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                == f"test_{WRONG[1]}")
    error = next(o for o in test.outputs if o.output_type == "error")
    assert error.ename == "AssertionError" and "ddof=1" in error.evalue


@SLOW
def test_the_hidden_cases_ran_at_autograde(graded):
    course, _, _ = graded
    nb = nbformat.read(course / "autograded" / "perfect" / ASSIGNMENT / f"{WRONG[0]}.ipynb", 4)
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                == f"test_{WRONG[1]}")
    printed = "".join(o.get("text", "") for o in test.outputs)
    assert "all 3 public cases pass" in printed and "all 3 hidden cases pass" in printed


@SLOW
def test_checksum_warnings_come_from_the_hidden_tests_not_from_students(graded):
    """The README's sentence: autograde warns about every test cell of every student, because the
    stored checksum includes the hidden cases the released copy lacks (the perfect student
    changed no test cell), and about no other cell."""
    _, _, log = graded
    warned = re.findall(r"Attribute 'checksum' for cell (\S+) has changed", log)
    assert warned and all(cell.startswith("test_") for cell in warned), log[-3000:]
    tests = {f"test_{gid}" for _, gid in all_tasks()}
    assert set(warned) == tests
    assert len(warned) >= len(all_tasks())  # each submitted test cell, perfect student included


@SLOW
def test_student_code_can_tamper_with_the_tests_as_the_readme_warns(graded):
    _, scores, _ = graded
    assert scores["tamper"] == (all_tasks()[WRONG[:2]].points, TOTAL)  # nothing solved


@SLOW
def test_validate_fails_for_the_wrong_student_with_the_course_message(graded, nbgrader_env):
    course, _, _ = graded
    py, env = nbgrader_env
    path = course / "submitted" / "wrong" / ASSIGNMENT / f"{WRONG[0]}.ipynb"
    shutil.copy(path, course / "wrong.ipynb")  # validate runs it; keep the submission as it was
    done = run([py.with_name("nbgrader"), "validate", "wrong.ipynb"], env, cwd=course,
               check=False)
    out = done.stdout + done.stderr
    assert "VALIDATION FAILED" in out and "ddof=1" in out and "Success!" not in out, out
