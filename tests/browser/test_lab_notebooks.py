"""Student notebooks: only the expected "not implemented yet" messages, every demo redraws
(lab_harness.notebook_test says how)."""

import pytest
from lab_harness import notebook_test

pytestmark = pytest.mark.browser

test_student_notebook_in_jupyterlab = notebook_test("notebooks")
