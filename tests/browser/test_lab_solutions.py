"""Solution notebooks: no error anywhere, every check passes, every demo redraws
(lab_harness.notebook_test says how)."""

import pytest
from lab_harness import notebook_test

# Opening JupyterLab (the first test) and running a notebook through the UI on a loaded machine:
# more than the suite's default limit, less than CI's whole budget.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

test_solution_notebook_in_jupyterlab = notebook_test("solutions")
