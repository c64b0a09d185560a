"""Solution notebooks: no error anywhere, every check passes, every demo redraws
(lab_harness.notebook_test says how)."""

import pytest
from lab_harness import notebook_test

pytestmark = pytest.mark.browser

test_solution_notebook_in_jupyterlab = notebook_test("solutions")
