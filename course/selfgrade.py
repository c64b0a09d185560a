"""Grade your own notebook as the instructor's grader would, from wherever you are.

    python -m course.selfgrade 02_forward_pass        # a terminal, any folder: notebooks/02_...
    python -m course.selfgrade path/to/copy.ipynb     # any other notebook file

or in a cell of the notebook itself, after saving it (it grades the file as saved):

    from course.selfgrade import grade_me
    grade_me()
"""

import os
import subprocess
import sys
from pathlib import Path

from course.notebook import NOTEBOOKS

NO_SANDBOX_NOTE = ("(no bubblewrap sandbox on this machine: your code runs as you, as in the "
                   "notebook;\nthe instructor's grader confines it)")


def _sandbox_missing():
    """Why the grader's sandbox cannot run here, or None."""
    from course.grade.sandbox import bwrap

    return bwrap.probe() or None


def grade_command(paths, no_sandbox):
    """The grader's student mode for these notebooks, with the Python running this code."""
    return [sys.executable, "-m", "course.grade", *map(str, paths),
            *(["--no-sandbox"] if no_sandbox else [])]


def find(name):
    """The notebook file `name` means: a path from here, else the course's notebooks/NAME(.ipynb)
    (so `02_forward_pass` works from any folder), else None."""
    path = Path(name).expanduser()
    for candidate in (path, NOTEBOOKS / name, NOTEBOOKS / f"{name}.ipynb"):
        if candidate.is_file():
            return candidate.resolve()
    return None


def grade(names):
    """Grade the notebooks `names` (see `find`); print the table; the grader's exit code."""
    paths = [find(n) for n in names]
    if missing := [n for n, p in zip(names, paths, strict=True) if p is None]:
        print(f"no such notebook: {', '.join(missing)} (neither from here nor in {NOTEBOOKS})",
              file=sys.stderr)
        return 2
    no_sandbox = _sandbox_missing() is not None
    if no_sandbox:
        print(NO_SANDBOX_NOTE)
    done = subprocess.run(grade_command(paths, no_sandbox), capture_output=True, text=True)
    print(done.stdout, end="")
    noise = "warning: --no-sandbox"  # said above, in a student's words
    err = "".join(ln for ln in done.stderr.splitlines(True) if not ln.startswith(noise))
    print(err, end="", file=sys.stderr)
    return done.returncode


def grade_me(path=None):
    """Grade this notebook as last saved (Ctrl-S first); a path names another notebook."""
    if path is None:
        path = os.environ.get("JPY_SESSION_NAME")  # set by Jupyter for the notebook's kernel
        if not path:
            print("which notebook? grade_me(\"02_forward_pass.ipynb\") names it",
                  file=sys.stderr)
            return 2
    sys.stdout.flush()
    return grade([path])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    return grade(argv)


if __name__ == "__main__":
    sys.exit(main())
