"""The browser harness itself: it passes a working demo, and names what breaks, where.

These run on small throwaway notebooks in a tmp dir, so they hold even before (and whatever)
the course notebooks exist.
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from lab_harness import Lab
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]  # starts JupyterLab and Chromium

# A course.figures.demo.Demo with two sliders; `broken=True` raises inside the slider callback as
# soon as a slider leaves its starting value (the first draw works, as in a real regression).
DEMO_CELL = '''import numpy as np
from course.figures.demo import Demo, Slider

def draw_bump(fig, shift, width):
    if {broken} and shift != 0.0:
        raise ValueError("boom in the slider callback")
    ax = fig.subplots()
    x = np.linspace(-3, 3, 200)  # (200,)
    ax.plot(x, np.exp(-((x - shift) / width) ** 2))
    ax.set_title(f"shift = {{shift:.2f}}, width = {{width:.2f}}")

BUMP = Demo("throwaway bump", draw_bump,
            {{"shift": Slider(-2.0, 2.0, 0.1, 0.0, "shift"),
              "width": Slider(0.2, 2.0, 0.1, 1.0, "width")}},
            question="Where does the bump go?")
BUMP.show()'''


def _write(folder, name, cells):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)
    return f"{folder.name}/{name}"


def _demo(broken=False):
    return new_code_cell(DEMO_CELL.format(broken=broken), metadata={"tags": ["demo"]})


def _alive(pids):
    return [p for p in pids
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def _check(source):
    return new_code_cell(source, metadata={"tags": ["check"]})


@pytest.fixture(scope="module")
def scratch(playwright_driver, tmp_path_factory):
    """A Lab on a tmp root holding only throwaway notebooks."""
    root = tmp_path_factory.mktemp("scratch-root")
    with Lab(root, tmp_path_factory.mktemp("scratch-state"),
             playwright=playwright_driver) as running:
        yield running


def test_a_working_demo_passes_and_every_slider_redraws(scratch):
    path = _write(scratch.root / "solutions", "working_demo.ipynb", [
        new_markdown_cell("# Throwaway"),
        new_code_cell("print('hello')"),
        _check("print('All 2 cases pass. Well done!')"),
        _demo(),
    ])
    report = scratch.run_notebook(path, presses=2)  # the timing make bench relies on works
    assert not report.problems, report.failure_message()
    (times,) = report.latency_ms.values()
    assert len(times) == 2 and all(0 < ms < 30_000 for ms in times), times
    assert report.sliders_moved == 2
    assert "hello" in report.cells[1]["text"]
    assert report.screenshot.endswith("solutions-working_demo.png")


def test_a_broken_slider_callback_fails_naming_notebook_and_cell_and_nothing_is_left_running(
        playwright_driver, tmp_path):
    root = tmp_path / "root"
    path = _write(root / "solutions", "broken_widget.ipynb", [
        new_markdown_cell("# Broken on purpose"),
        new_code_cell("x = 1"),
        _demo(broken=True),
        new_code_cell("raise RuntimeError('deliberate top-level error')"),
    ])
    with pytest.raises(AssertionError) as failed, Lab(root, tmp_path / "state",
                                                      playwright=playwright_driver) as lab:
        report = lab.run_notebook(path)
        pids = lab.pids()
        assert len(pids) >= 3  # server, its kernel(s) and the browser
        assert not report.problems, report.failure_message()  # what a browser test does
    message = str(failed.value)
    assert "solutions/broken_widget.ipynb" in message
    assert "cell 3 of 4" in message and "tagged demo" in message
    assert "moving slider 'shift'" in message
    assert "raised in the widget callback: ValueError: boom in the slider callback" in message
    assert "cell 4 of 4" in message and "RuntimeError: deliberate top-level error" in message
    # The test failed inside the `with`; the server, kernels and Chromium are gone all the same.
    assert not _alive(pids), f"processes left behind: {_alive(pids)}"


def test_student_notebooks_may_say_not_implemented_but_not_raise(scratch):
    ok = _write(scratch.root / "notebooks", "student_ok.ipynb", [
        new_code_cell("def f(x):\n    raise NotImplementedError('fill in f')"),
        _check("try:\n    f(1)\nexcept NotImplementedError:\n"
               "    print('… f(): not implemented yet. Fill in the cell above.')"),
    ])
    bad = _write(scratch.root / "notebooks", "student_bad.ipynb", [
        new_code_cell("def f(x):\n    raise NotImplementedError('fill in f')"),
        _check("f(1)"),
    ])
    assert not scratch.run_notebook(ok).problems
    report = scratch.run_notebook(bad)
    message = report.failure_message()
    assert "notebooks/student_bad.ipynb" in message and "cell 2 of 2" in message
    assert "NotImplementedError: fill in f" in message
    # The same "not implemented yet" output is a failure in a solution notebook.
    sol = _write(scratch.root / "solutions", "solution_unfinished.ipynb", [
        _check("print('… f(): not implemented yet.')")])
    assert "says 'not implemented yet' in a solution notebook" in (
        scratch.run_notebook(sol).failure_message())


KILLED_RUN = """
import sys, time
sys.path.insert(0, {here!r})
from lab_harness import Lab
lab = Lab({root!r}, {state!r}).__enter__()
lab._shutdown_sessions = lambda path: None  # keep the kernel running
lab.run_notebook("solutions/one_cell.ipynb")
print("PIDS", *sorted(lab.pids()), flush=True)
time.sleep(300)
"""


def test_a_killed_test_process_leaves_no_server_kernel_or_browser(playwright_driver, tmp_path):
    """SIGKILL (a CI timeout) gives no chance to tear down: the children must go by themselves."""
    root = tmp_path / "root"
    _write(root / "solutions", "one_cell.ipynb", [new_code_cell("x = 1")])
    script = KILLED_RUN.format(here=str(Path(__file__).parent), root=str(root),
                               state=str(tmp_path / "state"))
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = run.stdout.readline()  # bounded by the harness's own waits
        assert line.startswith("PIDS"), f"the child run did not report its processes: {line!r}"
        pids = [int(p) for p in line.split()[1:]]
        assert len(pids) >= 3  # server, kernel, browser
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _alive(pids), f"processes left behind after SIGKILL: {_alive(pids)}"


def test_a_stuck_run_fails_within_its_bound_naming_the_notebook(scratch, monkeypatch):
    import lab_harness

    monkeypatch.setattr(lab_harness, "RUN_S", 3)
    path = _write(scratch.root / "solutions", "stuck.ipynb", [
        new_code_cell("import time\ntime.sleep(120)")])
    t0 = time.monotonic()
    with pytest.raises(lab_harness.LabError) as stuck:
        scratch.run_notebook(path)
    assert time.monotonic() - t0 < 60
    message = str(stuck.value)
    assert message.startswith("solutions/stuck.ipynb: Run All Cells did not finish")
    assert "within 3 s" in message and "'[*]:'" in message  # the UI state says what is running
    assert Path(scratch.screenshots / "solutions-stuck.png").is_file()
