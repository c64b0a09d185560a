"""Entry point for `python -m course.grade`."""

import sys

from course.grade.cli import main

sys.exit(main())
