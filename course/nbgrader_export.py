"""Write an nbgrader course source from solutions/ and the Tasks, so nbgrader grades the course.

    python -m course.nbgrader_export OUT_DIR [--assignment batchnorm] [--secret-file PATH]

OUT_DIR gets nbgrader_config.py and source/<assignment>/NN_topic.ipynb: each solution notebook
with its setup and check cells locked, and after each exercise's check cell a locked test cell
worth the Task's points. The test runs the Task on the public cases (what `nbgrader validate`
shows a student) and, between nbgrader's hidden-test markers, on cases from a hidden seed; a
failed case fails the cell with the check cells' own mistake sentences. Then, in OUT_DIR:
`nbgrader generate_assignment <assignment>`, `nbgrader autograde <assignment>`. The hidden seeds
derive from COURSE_GRADE_SECRET or --secret-file, never from the command line (as the grader).
"""

import argparse
import ast
import copy
import os
import secrets
import sys
from pathlib import Path

import nbformat

from course.grade.grading import hidden_seed
from course.notebook import NotInRepository, grade_id, read, solution_paths, tags
from course.release import KERNELSPEC, checked_id, render
from course.tasks import for_notebook

HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
ASSIGNMENT = "batchnorm"
CONFIG = '''\
"""nbgrader settings for the course source written by `python -m course.nbgrader_export`."""
c = get_config()  # noqa: F821 - nbgrader defines it
c.CourseDirectory.course_id = "bn-course"
# Seconds per cell: the slowest cell of the course takes a few; a stuck student loop must not
# hold the autograder for long.
c.Execute.timeout = {timeout}
# Execute with the kernel named in the notebooks (python3), where `course` is installed.
c.Execute.kernel_name = "python3"
'''


def _meta(gid, *, grade=False, solution=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": gid, "locked": locked, "schema_version": 3,
            "solution": solution}
    if points is not None:
        meta["points"] = points
    return meta


def _check_id(cell):
    """The grade_id a check cell checks: the first argument of its `check("...", ...)` call."""
    for node in ast.walk(ast.parse(cell.source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check" \
                and node.args and isinstance(node.args[0], ast.Constant):
            return node.args[0].value
    return None


def autograder_source(task, seed):
    """The autograder test cell's code for one Task: public cases, then hidden ones."""
    call = (f'assert_passes("{task.grade_id}", {", ".join(task.functions)}, '
            f'notebook="{task.notebook}"')
    return (f"# Autograder test: {', '.join(task.functions)} ({task.points:g} points). It also\n"
            "# runs hidden cases when your work is graded; edits to this cell are discarded.\n"
            "from course.checks import assert_passes\n\n"
            f"{call})\n"
            f"{HIDDEN_BEGIN}\n{call}, seed={seed})\n{HIDDEN_END}")


def source_version(nb, nb_id, secret):
    """The nbgrader source notebook for one solution notebook."""
    out = copy.deepcopy(nb)
    tasks = {t.grade_id: t for t in for_notebook(nb_id)}
    answered = {grade_id(c) for c in out.cells if "answer" in tags(c)}
    if missing := sorted(set(tasks) - answered):
        raise ValueError(f"{nb_id}: tasks without an answer cell: {missing}")
    cells, tested, n_setup = [], set(), 0
    for cell in out.cells:
        cells.append(cell)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if "setup" in tags(cell):
            n_setup += 1
            cell.metadata["nbgrader"] = _meta("setup" if n_setup == 1 else f"setup_{n_setup}",
                                              locked=True)
        elif "check" in tags(cell):
            checked = _check_id(cell)
            cell.metadata["nbgrader"] = _meta(f"check_{checked or cell.id}", locked=True)
            task = tasks.get(checked)
            if task is not None:  # the test follows its exercise's check cell
                tested.add(task.grade_id)
                seed = hidden_seed(secret, f"{nb_id}:{task.grade_id}")
                cells.append(nbformat.v4.new_code_cell(
                    autograder_source(task, seed), id=f"test-{cell.id}"[:64],
                    metadata={"nbgrader": _meta(f"test_{task.grade_id}", grade=True,
                                                locked=True, points=task.points)}))
    if untested := sorted(set(tasks) - tested):
        raise ValueError(f"{nb_id}: tasks without a check cell to test after: {untested}")
    out.cells = cells
    out.metadata["kernelspec"] = KERNELSPEC
    return out


def build(assignment=ASSIGNMENT, secret="", timeout=120):
    """{relative path: text} of the whole nbgrader course source."""
    files = {"nbgrader_config.py": CONFIG.format(timeout=timeout)}
    for path in solution_paths():
        nb = read(path)
        files[f"source/{assignment}/{path.name}"] = render(
            source_version(nb, checked_id(nb, path), secret))
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m course.nbgrader_export",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the nbgrader course folder to write")
    parser.add_argument("--assignment", default=ASSIGNMENT,
                        help=f"assignment name, one for all notebooks (default: {ASSIGNMENT})")
    parser.add_argument("--secret", help=argparse.SUPPRESS)  # refused: visible in /proc
    parser.add_argument("--secret-file", type=Path,
                        help="file holding the secret the hidden seeds derive from (or set "
                        "COURSE_GRADE_SECRET; default: random)")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per cell for nbgrader")
    args = parser.parse_args(argv)
    if args.secret is not None:
        print("refusing --secret: a command line is readable by every process\n"
              "(/proc/PID/cmdline); set COURSE_GRADE_SECRET or pass --secret-file PATH",
              file=sys.stderr)
        return 2
    secret = (args.secret_file.read_text().strip() if args.secret_file
              else os.environ.get("COURSE_GRADE_SECRET"))
    try:
        files = build(args.assignment, secret or secrets.token_hex(16), args.timeout)
    except NotInRepository as err:
        print(f"course.nbgrader_export: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # a notebook breaks a rule the export relies on
        print(f"course.nbgrader_export: {err}", file=sys.stderr)
        return 1
    for rel, text in files.items():
        target = args.out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    out, source = args.out, args.out / "source" / args.assignment
    print(f"wrote {len(files) - 1} notebooks to {source}/\nand {out / 'nbgrader_config.py'}.\n"
          f"Next, in {out}:\n"
          f"  nbgrader generate_assignment {args.assignment}\n"
          f"  (students' work goes to submitted/<student>/{args.assignment}/)\n"
          f"  nbgrader autograde {args.assignment}\n"
          f"Keep {out} from students: its notebooks hold the solutions and the hidden seeds.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
