"""Generate the student notebooks in notebooks/ from the solutions in solutions/.

    python -m course.release                 # write notebooks/
    python -m course.release --check         # exit 1 with a diff if notebooks/ is stale
    python -m course.release --new 08_topic  # start solutions/08_topic.ipynb from the skeleton
"""

import argparse
import copy
import difflib
import re
import sys
import textwrap
from pathlib import Path

import nbformat

from course.notebook import (
    BEGIN,
    END,
    NOTEBOOKS,
    SOLUTIONS,
    NotInRepository,
    grade_id,
    notebook_id,
    read,
    solution_paths,
    tags,
)
from course.tasks import for_notebook

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
# Cells a student must not edit or delete: the setup the grader runs and the check cells.
# JupyterLab honours these two metadata flags (nbgrader's export locks the same cells).
LOCKED_TAGS = {"setup", "check"}
# Where the README explains how to add a notebook or an exercise, for messages pointing to it.
RECIPE = "README, 'Adding a notebook or an exercise'"
_REGION = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*(\n|$)",
                     re.MULTILINE | re.DOTALL)
_DEF = re.compile(r"^[ \t]*def (\w+)\(", re.MULTILINE)


def stub_source(source, cell_type, task_id):
    """Replace each solution region with a stub the student fills in."""
    def stub(match):
        indent, newline = match.group(1), match.group(2)
        if cell_type == "markdown":
            return f"{indent}YOUR ANSWER HERE{newline}"
        # Name the function the stub sits in (a cell may hold a forward and a backward).
        defs = _DEF.findall(source, 0, match.start())
        name = defs[-1] if defs else task_id
        return (f"{indent}# YOUR CODE HERE\n"
                f'{indent}raise NotImplementedError("{name}: not implemented yet"){newline}')
    new, count = _REGION.subn(stub, source)
    if BEGIN in new or END in new:
        raise ValueError(f"{task_id}: unbalanced {BEGIN} / {END} markers")
    return new, count


def student_version(nb, nb_id):
    """The student notebook for one solution notebook: stubs, no outputs, points, an id."""
    out = copy.deepcopy(nb)
    tasks = {t.grade_id: t for t in for_notebook(nb_id)}
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if "answer" in tags(cell) and cell.cell_type == "code":
            # An auto-graded answer's points live in its Task only (written answers keep theirs
            # in the solution's metadata), so changing them is a one-line edit in course/tasks.
            task = tasks.get(grade_id(cell))
            if task is None:
                raise ValueError(
                    f"{nb_id}: answer cell {grade_id(cell)}\nhas no Task in course/tasks: "
                    f"add one with notebook={nb_id!r} to the TASKS list of\n"
                    f"course/tasks/nb{nb_id[:2]}.py ({RECIPE}).")
            cell.metadata["nbgrader"]["points"] = task.points
        if "answer" in tags(cell):
            new, count = stub_source(cell.source, cell.cell_type, grade_id(cell) or nb_id)
            if count == 0 and cell.cell_type == "code":
                raise ValueError(f"{nb_id}: answer cell {grade_id(cell)} has no {BEGIN} region\n"
                                 f"({RECIPE}).")
            cell.source = new
        if tags(cell) & LOCKED_TAGS:
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
    out.metadata["kernelspec"] = KERNELSPEC
    out.metadata.setdefault("course", {})["notebook"] = nb_id
    return out


_SETUP = '''\
import numpy as np
import matplotlib.pyplot as plt

try:
    import course  # noqa: F401  the course package, next to this folder
except ModuleNotFoundError:
    raise ModuleNotFoundError("No module named 'course': start JupyterLab with `make lab` in the "
                              "course repository, or run `pip install -e .` there first") from None

from course.figures import use_style

use_style()
'''

NEXT_STEPS = """\
Next ({recipe}):
  1. Write the notebook; keep Setup, a numbered section, a Think!, a demo introduced
     by its question, and the Summary (tests/test_notebooks.py checks them).
  2. Each exercise: an answer cell (grade_id = first function graded), a Task in
     course/tasks/nb{nn}.py exported in its TASKS, unlisted mistakes in tests/test_tasks.py,
     and a check cell `check("grade_id", fn)`.
  3. A README entry for every new module; then update the course's counts and points
     (README, tests/test_nbgrader_export.py's TOTAL).
  4. python -m course.release, then make test."""


def skeleton(name):
    """A new solution notebook that already follows the course's skeleton rules."""
    if not re.fullmatch(r"\d\d_[a-z0-9]+(_[a-z0-9]+)*", name):
        raise ValueError(f"{name!r}: name a notebook NN_topic, e.g. 08_layer_scale")
    nn = name[:2]
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    think = md("### BEGIN SOLUTION\nThe model answer, for the instructor.\n### END SOLUTION",
               metadata={"tags": ["answer"], "nbgrader": {
                   "grade": True, "grade_id": f"think_{nn}_question", "locked": False,
                   "points": 1, "schema_version": 3, "solution": True}})
    nb = nbformat.v4.new_notebook(cells=[
        md(f"# {nn} · Title\n\nWhat this notebook is about, in two sentences.\n\n"
           "**Objectives**\n\n- ...\n\nEstimated time: 30 min"),
        md("## Setup"),
        code(_SETUP, metadata={"tags": ["setup"]}),
        md("## 1. First section\n\nA claim, computed in `course/` and printed here."),
        md("### Interactive demo: what it shows\n\nThe question the student answers by moving "
           "the sliders?"),
        code("# A course.figures.demo.Demo, listed in course.figures.all_demos():\n"
             "# MY_DEMO.show()", metadata={"tags": ["demo"]}),
        md("### Think! 1: A question whose answer is graded by hand?"),
        think,
        md("## Summary\n\n- ..."),
    ])
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["course"] = {"notebook": name}
    return nb


def render(nb):
    """The exact text written to disk, so --check can compare strings."""
    return nbformat.writes(nb, version=4) + "\n"


def stale_message(names):
    """notebooks/ is stale: which ones and what to run, in lines under 90 columns."""
    return textwrap.fill(f"notebooks/ is stale ({', '.join(names)}).", 88) + \
        "\nRun: python -m course.release"


def checked_id(nb, path):
    """A solution notebook's id, which must be its file name: a copied notebook keeps the id of
    the one it was copied from, and its Tasks, errors and grades would go to that one."""
    nb_id = notebook_id(nb, path)
    if nb_id != Path(path).stem:
        raise ValueError(
            f"{Path(path).name}: its metadata says it is notebook {nb_id!r}.\n"
            f"Copied from it? Set metadata.course.notebook to {Path(path).stem!r}, or start\n"
            "new notebooks with "
            f"`python -m course.release --new NN_topic`\n({RECIPE}).")
    return nb_id


def build():
    """{target path: text} for every student notebook."""
    result = {}
    for path in solution_paths():
        nb = read(path)
        result[NOTEBOOKS / path.name] = render(student_version(nb, checked_id(nb, path)))
    return result


def start_notebook(name):
    """Write solutions/<name>.ipynb from the skeleton (never over an existing notebook)."""
    try:
        nb = skeleton(name)
    except ValueError as err:
        print(f"course.release: {err}", file=sys.stderr)
        return 2
    path = SOLUTIONS / f"{name}.ipynb"
    taken = sorted(p.name for p in SOLUTIONS.glob(f"{name[:2]}_*.ipynb"))
    if taken:
        print(f"course.release: {taken[0]} already has number {name[:2]}", file=sys.stderr)
        return 2
    SOLUTIONS.mkdir(exist_ok=True)
    path.write_text(render(nb))
    print(f"wrote {path.relative_to(SOLUTIONS.parent)}\n"
          + NEXT_STEPS.format(recipe=RECIPE, nn=name[:2]))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only report whether notebooks/ is stale")
    parser.add_argument("--new", metavar="NN_topic",
                        help="start solutions/NN_topic.ipynb from the course's skeleton")
    args = parser.parse_args(argv)
    if args.new:
        return start_notebook(args.new)
    try:
        wanted = build()
    except NotInRepository as err:  # an installed package: nothing to release from
        print(f"course.release: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # a notebook breaks a rule release relies on
        print(f"course.release: {err}", file=sys.stderr)
        return 1
    stray = sorted(p for p in NOTEBOOKS.glob("*.ipynb") if p not in wanted)
    if args.check:
        stale = []
        for path, text in wanted.items():
            have = path.read_text() if path.exists() else ""
            if have != text:
                stale.append(path.name)
                diff = difflib.unified_diff(have.splitlines(), text.splitlines(),
                                            f"{path.name} (committed)", f"{path.name} (generated)",
                                            lineterm="", n=1)
                print("\n".join(list(diff)[:40]))
        for path in stray:
            stale.append(path.name)
            print(f"{path.name}: in notebooks/ but has no source in solutions/")
        if stale:
            print("\n" + stale_message(stale))
            return 1
        print(f"notebooks/ is up to date ({len(wanted)} notebooks).")
        return 0
    NOTEBOOKS.mkdir(exist_ok=True)
    for path, text in wanted.items():
        path.write_text(text)
    for path in stray:
        path.unlink()
    print(f"wrote {len(wanted)} student notebooks to {NOTEBOOKS.name}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
