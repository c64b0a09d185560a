"""Course benchmark: notebook run time and kernel peak memory, and demo latency.

    python benchmarks/bench.py [--only 03] [--repeat 7] [--presses 9]

A benchmark, not a test: it prints tables and asserts nothing. Targets: each notebook
<= 20 s and <= 500 MB on 2 cores; each demo <= 150 ms (median) from a slider key press until
its new figure is on the page, timed in real JupyterLab in Chromium by the browser harness
(tests/browser/lab_harness.py; skipped with one line where Chromium or Playwright is missing).
The kernel-side redraw (what the slider callback computes) is printed alongside.
"""

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import nbformat  # noqa: E402
import psutil  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course.figures import all_demos  # noqa: E402
from course.figures.demo import Choice, LiveFigure  # noqa: E402


def _peak_rss(pid, stop, peak):
    """Poll the kernel's resident memory (with its children) until stop is set."""
    try:
        proc = psutil.Process(pid)
        while not stop.is_set():
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(True))
            peak[0] = max(peak[0], rss)
            time.sleep(0.02)
    except psutil.Error:
        pass


def run_notebook(path):
    """(seconds, peak MB) to execute one notebook top to bottom in a fresh kernel."""
    nb = nbformat.read(str(path), as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT)}})
    stop, peak = threading.Event(), [0]
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        watcher = threading.Thread(target=_peak_rss, args=(pid, stop, peak), daemon=True)
        watcher.start()
        start = time.perf_counter()
        # Cell by cell inside this context: client.execute() would start and clean up a kernel
        # of its own, and the watcher must see the one that runs the cells.
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        seconds = time.perf_counter() - start
        stop.set()
        watcher.join()
    return seconds, peak[0] / 2**20


def time_demo(demo, repeat):
    """Median seconds for one redraw as Demo.show does it (update the figure, render the PNG)."""
    live = LiveFigure(demo.draw)
    live.png(**demo.defaults())
    times = []
    for i in range(repeat):
        params = demo.defaults()
        name, s = list(demo.sliders.items())[i % len(demo.sliders)]
        if isinstance(s, Choice):
            params[name] = s.options[(i + 1) % len(s.options)]
        else:
            params[name] = type(s.value)(s.min + (s.max - s.min) * (i + 1) / (repeat + 1))
        start = time.perf_counter()
        live.png(**params)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def browser_latency(presses, only=""):
    """{demo cell's show() line: [ms per key press]} over the solution notebooks, in the UI."""
    sys.path.insert(0, str(ROOT / "tests" / "browser"))
    from lab_harness import Lab, copy_course, course_notebooks, demo_label, missing_browser_reason

    reason = missing_browser_reason()
    if reason:
        print(reason)
        return {}
    latency = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_course(ROOT, Path(tmp) / "root")
        with Lab(root, Path(tmp) / "state") as lab:
            for path in course_notebooks("solutions"):
                if not Path(path).name.startswith(only):
                    continue
                report = lab.run_notebook(path, presses=presses)
                if report.problems:
                    print(report.failure_message())
                for i, times in report.latency_ms.items():
                    latency[f"{Path(path).name[:2]} {demo_label(report, i)}"] = times
    return latency


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="notebook number prefix, e.g. 03")
    ap.add_argument("--repeat", type=int, default=7, help="kernel-side redraws per demo")
    ap.add_argument("--presses", type=int, default=9, help="timed key presses per demo")
    ap.add_argument("--demos-only", action="store_true", help="skip the notebook runs")
    args = ap.parse_args(argv)

    print(f"{'notebook':46} {'seconds':>8} {'peak MB':>8}")
    for folder in ("solutions", "notebooks") if not args.demos_only else ():
        for path in sorted((ROOT / folder).glob(f"{args.only}*.ipynb")):
            seconds, mb = run_notebook(path)
            flag = "" if seconds <= 20 and mb <= 500 else "  <-- over target"
            print(f"{folder + '/' + path.name:46} {seconds:8.1f} {mb:8.0f}{flag}")

    print(f"\n{'demo (kernel side: one redraw)':46} {'median ms':>10}")
    for demo in all_demos():
        ms = 1000 * time_demo(demo, args.repeat)
        print(f"{demo.name:46} {ms:10.0f}")

    latency = browser_latency(args.presses, args.only)
    print(f"\n{'demo (browser: key press to new figure)':46} {'median ms':>10} {'range':>11}")
    for name, times in latency.items():
        ms = statistics.median(times) if times else float("nan")
        spread = f"{min(times):.0f}-{max(times):.0f}" if times else "no press"
        flag = "" if ms <= 150 else "  <-- over target"
        print(f"{name:46} {ms:10.0f} {spread:>11}{flag}")


if __name__ == "__main__":
    main()
