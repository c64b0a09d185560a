"""Course benchmark: notebook run time and kernel peak memory, and demo redraw times.

    python benchmarks/bench.py [--only 03] [--repeat 7]

A benchmark, not a test: it prints a table and asserts nothing. Targets: each notebook
<= 20 s and <= 500 MB on 2 cores; each demo redraw <= 100 ms (median).
"""

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import psutil  # noqa: E402
from nbclient import NotebookClient  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from course.figures import all_demos  # noqa: E402


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
    """Median seconds for one redraw (draw + render) as a slider moves."""
    times = []
    for i in range(repeat):
        params = demo.defaults()
        name, s = list(demo.sliders.items())[i % len(demo.sliders)]
        params[name] = s.min + (s.max - s.min) * (i + 1) / (repeat + 1)
        start = time.perf_counter()
        fig = plt.figure()
        demo.draw(fig, **params)
        fig.canvas.draw()
        times.append(time.perf_counter() - start)
        plt.close(fig)
    return statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="notebook number prefix, e.g. 03")
    ap.add_argument("--repeat", type=int, default=7, help="redraws per demo")
    args = ap.parse_args(argv)

    print(f"{'notebook':46} {'seconds':>8} {'peak MB':>8}")
    for folder in ("solutions", "notebooks"):
        for path in sorted((ROOT / folder).glob(f"{args.only}*.ipynb")):
            seconds, mb = run_notebook(path)
            flag = "" if seconds <= 20 and mb <= 500 else "  <-- over target"
            print(f"{folder + '/' + path.name:46} {seconds:8.1f} {mb:8.0f}{flag}")

    print(f"\n{'demo':46} {'median redraw ms':>17}")
    for demo in all_demos():
        ms = 1000 * time_demo(demo, args.repeat)
        print(f"{demo.name:46} {ms:17.0f}{'' if ms <= 100 else '  <-- over target'}")


if __name__ == "__main__":
    main()
