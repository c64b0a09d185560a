"""Solution notebooks: no error anywhere, every check passes, every demo redraws.

Each notebook is opened in the real JupyterLab UI (headless Chromium), run with Run > Run All
Cells, and every slider of every demo is moved; a screenshot lands in screenshots/.
"""

import pytest
from lab_harness import assert_runs_cleanly, course_notebooks

pytestmark = pytest.mark.browser


# solutions/ and notebooks/ live in two files so that pytest -n 2 --dist loadfile runs them at once.
@pytest.mark.parametrize("path", course_notebooks("solutions"))
def test_solution_notebook_in_jupyterlab(lab, path):
    assert_runs_cleanly(lab, path)
