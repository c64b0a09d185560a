"""Solution notebooks: no error anywhere, every check passes, every demo redraws.

Each notebook is opened in the real JupyterLab UI (headless Chromium), run with Run > Run All
Cells, and every slider of every demo is moved; a screenshot lands in screenshots/.
"""

import pytest
from lab_harness import course_notebooks

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("path", course_notebooks("solutions"))
def test_solution_notebook_in_jupyterlab(lab, path):
    report = lab.run_notebook(path)
    print(f"{path}: {report.seconds:.1f} s, {report.sliders_moved} slider moves, "
          f"screenshot {report.screenshot}")
    print("  " + ", ".join(f"{k} {v:.1f} s" for k, v in report.phases.items()))
    for warning in report.warnings:
        print(f"  stderr (not an error): {warning}")
    assert not report.problems, report.failure_message()
