"""Drive the course in a real JupyterLab, in headless Chromium, the way a student does.

`Lab` starts a JupyterLab server from this environment and a Chromium driven by Playwright;
`Lab.run_notebook(path)` opens one notebook in a fresh browser context and workspace, runs all
cells through the menu, moves every slider of every demo and returns a `Report` of what a student
would see. Every wait is bounded and names what it waited for; `Lab.close()` leaves no server,
kernel or browser process behind.
"""

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
# The flags that work on these machines: no sandbox as root (Playwright adds --no-sandbox), and no
# background connections, which the closed network refuses.
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 1000}

SERVER_START_S = 90      # JupyterLab answering /api/status
OPEN_S = 60              # notebook rendered with all its cells
KERNEL_S = 60            # kernel idle before we run anything
RUN_S = 240              # Run All Cells finished (course notebooks take <= 20 s under nbval)
WIDGET_S = 30            # a demo's widgets rendered, a slider move redrawn the figure
TIMED_PRESSES = 0        # slider key presses timed per demo: none in tests (make bench times 9)
# A demo's figure: an <img> in an Output widget (plt.show) or an ipywidgets.Image.
DEMO_IMG = ".widget-output img, img.widget-image"

# A traceback (or IPython's short SyntaxError form) as JupyterLab renders an `error` output.
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s*\w*(Error|Exception)\b",
                       re.MULTILINE)
# What JupyterLab shows instead of a widget when the widget cannot be rendered.
WIDGET_FAILURES = ("Error displaying widget", "No renderer could be found",
                   "A Jupyter widget could not be displayed", "Loading widget...")
NOT_IMPLEMENTED = "not implemented yet"


class LabError(AssertionError):
    """A bounded wait ran out, or the UI is in a state the harness cannot go on from."""


def missing_browser_reason():
    """Why the browser tests cannot run here, or None when they can."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return (f"browser tests skipped: no Chromium at {CHROMIUM} "
                "(`make browser-deps`, as root, installs Debian's chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "browser tests skipped: playwright is not installed (`make install`)"
    return None


# --------------------------------------------------------------------------- what the UI shows

# One pass over the open notebook: per cell, its prompt and every rendered output.
_READ_CELLS_JS = """() => {
  const nb = document.querySelector('.jp-NotebookPanel .jp-Notebook');
  if (!nb) return null;
  return [...nb.querySelectorAll(':scope .jp-Notebook-cell')].map(cell => ({
    prompt: (cell.querySelector('.jp-InputArea-prompt')?.textContent || '').trim(),
    text: cell.querySelector('.jp-Cell-outputArea')?.innerText || '',
    outputs: [...cell.querySelectorAll('.jp-OutputArea-output[data-mime-type]')].map(o => ({
      mime: o.dataset.mimeType,
      text: o.innerText.slice(0, 4000),
      in_widget: !!o.closest('.widget-output'),
    })),
    sliders: cell.querySelectorAll('.widget-slider').length,
    choices: cell.querySelectorAll('.widget-toggle-buttons').length,
    widget_images: [...cell.querySelectorAll(DEMO_IMG)].map(i => i.src),
  }));
}""".replace("DEMO_IMG", json.dumps(DEMO_IMG))

_STATUS_JS = """() => {
  const dialog = document.querySelector('.jp-Dialog');
  if (dialog) return {dialog: dialog.innerText.slice(0, 500)};
  const nb = document.querySelector('.jp-NotebookPanel .jp-Notebook');
  const ind = document.querySelector('.jp-NotebookPanel .jp-Notebook-ExecutionIndicator');
  const prompts = nb ? [...nb.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
                         .map(p => p.textContent.trim()) : [];
  return {status: ind ? ind.dataset.status : null, prompts: prompts,
          cells: nb ? nb.querySelectorAll(':scope .jp-Notebook-cell').length : 0};
}"""


# Shared by the wait predicates below: the i-th cell, the kernel indicator, widget errors.
_JS_HELPERS = """
  const cellAt = i => document.querySelectorAll(
      '.jp-NotebookPanel .jp-Notebook .jp-Notebook-cell')[i];
  const idle = () => document.querySelector(
      '.jp-NotebookPanel .jp-Notebook-ExecutionIndicator')?.dataset.status === 'idle';
  const demoImages = cell => [...cell.querySelectorAll(DEMO_IMG)];
  const widgetError = cell => [...cell.querySelectorAll(
      '.widget-output [data-mime-type="application/vnd.jupyter.stderr"]')]
      .some(o => new RegExp(TRACEBACK, 'm').test(o.innerText));
"""


# Arms a timer in the page: from the next keydown until the demo's images differ from `before`
# and have decoded; the result lands in window.__demoTimer.ms.
_ARM_TIMER_BODY = """
  const cell = cellAt(i);
  const timer = window.__demoTimer = {t0: null, ms: null};
  document.addEventListener('keydown', () => { timer.t0 = timer.t0 ?? performance.now(); },
                            {capture: true, once: true});
  const obs = new MutationObserver(() => {
    const imgs = demoImages(cell);
    if (timer.t0 === null || !imgs.length ||
        JSON.stringify(imgs.map(e => e.src)) === JSON.stringify(before)) return;
    obs.disconnect();
    Promise.all(imgs.map(e => e.decode().catch(() => null)))
      .then(() => { timer.ms = performance.now() - timer.t0; });
  });
  obs.observe(cell, {subtree: true, childList: true, attributes: true,
                     attributeFilter: ['src']});
"""


def _js(args, body):
    """A JS predicate `(args) => { helpers; body }` for page.wait_for_function."""
    traceback = json.dumps(TRACEBACK.pattern)
    images = json.dumps(DEMO_IMG)
    return (f"({args}) => {{ const TRACEBACK = {traceback}; const DEMO_IMG = {images};"
            f" {_JS_HELPERS} {body} }}")


@dataclass
class Problem:
    """One thing a student would see go wrong, located by cell."""

    cell: int  # 0-based index in the notebook
    message: str


@dataclass
class Report:
    """What running one notebook in the UI showed."""

    path: str  # relative to the server root, e.g. "solutions/03_backward.ipynb"
    kind: str  # "solutions" or "notebooks" (what the outputs are expected to be)
    nb: object  # the nbformat notebook (sources, tags, ids)
    cells: list = field(default_factory=list)  # _READ_CELLS_JS rows after the run
    problems: list = field(default_factory=list)
    warnings: list = field(default_factory=list)  # stderr text that is not a traceback
    sliders_moved: int = 0
    screenshot: str = ""
    seconds: float = 0.0
    phases: dict = field(default_factory=dict)  # step name -> seconds
    page_errors: list = field(default_factory=list)  # uncaught JS errors in the page
    latency_ms: dict = field(default_factory=dict)  # demo cell -> ms per timed slider key press

    def where(self, index):
        """'cell 7 of 31 (id ..., tagged demo: `first line`)' for messages."""
        cell = self.nb.cells[index]
        tags = cell.get("metadata", {}).get("tags", [])
        first = next((ln for ln in cell.source.splitlines() if ln.strip()), "").strip()
        first = first if len(first) <= 60 else first[:57] + "..."
        bits = [f"id {cell.get('id', '?')!r}"] + ([f"tagged {'/'.join(tags)}"] if tags else [])
        return f"cell {index + 1} of {len(self.nb.cells)} ({', '.join(bits)}: `{first}`)"

    def add(self, index, message):
        self.problems.append(Problem(index, message))

    def failure_message(self):
        lines = [f"{self.path}: {len(self.problems)} problem(s) a student would see in JupyterLab:"]
        lines += [f"  - {self.where(p.cell)}: {p.message}"
                  for p in sorted(self.problems, key=lambda p: p.cell)]
        lines += [f"  (JavaScript error in the page: {e})" for e in self.page_errors]
        return "\n".join(lines)


def _last_line(text):
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def is_traceback(output):
    return (output["mime"] == "application/vnd.jupyter.stderr"
            and TRACEBACK.search(output["text"]) is not None)


def check_outputs(report):
    """Errors anywhere; widget placeholders; check cells saying what the kind expects."""
    not_run = []
    for i, (cell, row) in enumerate(zip(report.nb.cells, report.cells, strict=True)):
        if cell.cell_type != "code":
            continue
        for out in row["outputs"]:
            if is_traceback(out):
                if out["in_widget"] and any(p.cell == i for p in report.problems):
                    continue  # already named by the slider move that raised it
                where = "inside a widget" if out["in_widget"] else "as output"
                report.add(i, f"error shown {where}: {_last_line(out['text'])}")
            elif out["mime"] == "application/vnd.jupyter.stderr":
                report.warnings.append(f"{report.where(i)}: {_last_line(out['text'])}")
        for phrase in WIDGET_FAILURES:
            if phrase in row["text"]:
                report.add(i, f"widget not rendered: the output says {phrase!r}")
        if not re.search(r"\d", row["prompt"]):
            not_run.append(i)
        tags = cell.get("metadata", {}).get("tags", [])
        says_not_implemented = NOT_IMPLEMENTED in row["text"]
        if report.kind == "solutions" and says_not_implemented:
            report.add(i, f"says {NOT_IMPLEMENTED!r} in a solution notebook")
        if report.kind == "solutions" and "check" in tags and "✗" in row["text"]:
            report.add(i, f"the check fails in a solution notebook: {_last_line(row['text'])}")
        if report.kind == "notebooks" and "check" in tags and not says_not_implemented:
            report.add(i, f"check cell of the student notebook should say {NOT_IMPLEMENTED!r}, "
                          f"shows {_last_line(row['text'])!r}")
    if not_run:
        more = f", nor were the {len(not_run) - 1} code cells after it" if len(not_run) > 1 else ""
        report.add(not_run[0], f"not executed by Run All Cells{more}")


# --------------------------------------------------------------------------------- the server

def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_tree(procs, timeout=10):
    """Terminate, then kill, every process in `procs` still alive."""
    alive = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for send in (psutil.Process.terminate, psutil.Process.kill):
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                send(p)
        _, alive = psutil.wait_procs(alive, timeout=timeout)


def _descendants(pid):
    try:
        proc = psutil.Process(pid)
        return [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _die_with_parent():
    """In the child before exec: SIGTERM us when the test process dies, even by SIGKILL.

    JupyterLab answers SIGTERM by shutting its kernels down, so a killed test run (a CI
    timeout, `timeout pytest ...`) leaves no server or kernel behind. Linux only; elsewhere
    Lab.close() is the only cleanup.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def write_settings(settings_dir):
    """User settings for a test UI: every cell in the DOM, no news/update requests."""
    overrides = {
        # JupyterLab 4 attaches only cells near the viewport by default; a test that reads every
        # output needs them all.
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                         "checkForUpdates": False},
    }
    for name, values in overrides.items():
        path = Path(settings_dir) / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


class Lab:
    """A JupyterLab server on a throwaway root plus a headless Chromium; a context manager."""

    def __init__(self, root_dir, state_dir, screenshot_dir=None, playwright=None):
        self.root = Path(root_dir)
        self.state = Path(state_dir)
        self.screenshots = Path(screenshot_dir) if screenshot_dir else self.state / "screenshots"
        self.token = secrets.token_hex(24)
        self.port = None
        self.server = None
        self._server_procs = []
        self._browser_procs = []
        # Playwright's sync API allows one driver per thread: share the caller's if given.
        self._pw = playwright
        self._own_pw = playwright is None
        self.browser = None
        self._opened = 0

    # -- lifecycle
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        self._start_server()
        self._start_browser()

    def _start_server(self):
        for name in ("settings", "workspaces", "config", "data", "ipython", "runtime"):
            (self.state / name).mkdir(parents=True, exist_ok=True)
        write_settings(self.state / "settings")
        # Isolated from the user's Jupyter/IPython config so the UI is the one a new student gets.
        env = dict(os.environ, JUPYTER_CONFIG_DIR=str(self.state / "config"),
                   JUPYTER_DATA_DIR=str(self.state / "data"),
                   JUPYTER_RUNTIME_DIR=str(self.state / "runtime"),
                   IPYTHONDIR=str(self.state / "ipython"),
                   JUPYTERLAB_SETTINGS_DIR=str(self.state / "settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(self.state / "workspaces"),
                   PYDEVD_DISABLE_FILE_VALIDATION="1")
        env.pop("JUPYTER_PATH", None)
        log_path = self.state / "server.log"
        for _attempt in range(3):  # the free port can be taken between probing and binding
            self.port = _free_port()
            cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser",
                   "--ServerApp.open_browser=False", "--ServerApp.ip=127.0.0.1",
                   f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}",
                   f"--ServerApp.root_dir={self.root}",
                   f"--LabApp.user_settings_dir={self.state / 'settings'}",
                   f"--LabApp.workspaces_dir={self.state / 'workspaces'}",
                   "--ServerApp.terminals_enabled=False"]
            if os.geteuid() == 0:
                cmd.append("--allow-root")
            with open(log_path, "ab") as log:
                # Its own session: a Ctrl-C meant for pytest must not kill the server before
                # close() has shut it down cleanly; _die_with_parent covers a killed pytest.
                self.server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL, start_new_session=True,
                                               preexec_fn=_die_with_parent)
            if self._wait_server():
                self._api("GET", "/api/kernelspecs", timeout=30)  # warm the server's spec cache
                tracker = "/lab/api/settings/@jupyterlab/notebook-extension:tracker"
                mode = self._api("GET", tracker)["settings"].get("windowingMode")
                if mode != "none":
                    raise LabError(f"the settings override did not apply: windowingMode {mode!r}")
                return
        raise LabError(f"JupyterLab did not start; last lines of {log_path}:\n"
                       + "\n".join(log_path.read_text(errors="replace").splitlines()[-20:]))

    def _wait_server(self):
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                return False
            try:
                self._api("GET", "/api/status", timeout=2)
                return True
            except (OSError, urllib.error.URLError):
                time.sleep(0.25)
        raise LabError(f"JupyterLab did not answer on port {self.port} within {SERVER_START_S} s")

    def _api(self, method, path, timeout=10):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read()
        return json.loads(body) if body else None

    def _start_browser(self):
        from playwright.sync_api import sync_playwright

        if self._pw is None:
            self._pw = sync_playwright().start()
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                args=CHROMIUM_ARGS, timeout=60_000)
        self._browser_procs = [p for p in psutil.Process().children(recursive=True)
                               if p.pid not in before]

    def pids(self):
        """Every process this Lab started and that is running now (server, kernels, browser)."""
        procs = (_descendants(self.server.pid) if self.server else []) + self._browser_procs
        return {p.pid for p in procs if p.is_running()}

    def close(self):
        """Stop browser, kernels and server; kill whatever does not stop in time."""
        server_procs = _descendants(self.server.pid) if self.server else []
        try:
            if self.browser is not None:
                self.browser.close()
        except Exception:  # noqa: BLE001 - a dead browser must not stop the cleanup
            pass
        try:
            if self._pw is not None and self._own_pw:
                self._pw.stop()
        except Exception:  # noqa: BLE001
            pass
        _kill_tree(self._browser_procs, timeout=5)
        if self.server is not None and self.server.poll() is None:
            try:
                self._api("POST", "/api/shutdown", timeout=5)  # also shuts the kernels down
                self.server.wait(timeout=15)
            except (OSError, urllib.error.URLError, subprocess.TimeoutExpired):
                pass
        _kill_tree(server_procs, timeout=5)
        if self.server is not None:
            try:
                self.server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.browser = self._pw = None

    # -- one notebook
    def run_notebook(self, path, kind=None, presses=TIMED_PRESSES):
        """Open `path` (relative to the root) in a fresh context/workspace and run it in the UI;
        time `presses` slider key presses per demo (report.latency_ms)."""
        t0 = time.monotonic()
        path = Path(path).as_posix()
        kind = kind or Path(path).parts[0]
        report = Report(path=path, kind=kind, nb=nbformat.read(self.root / path, as_version=4))
        self._opened += 1
        workspace = f"t{self._opened}-{secrets.token_hex(4)}"
        context = self.browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(WIDGET_S * 1000)
        page = context.new_page()
        page.on("pageerror", lambda e: report.page_errors.append(str(e)[:300]))
        ui = _NotebookUI(page, report, self.screenshots, presses)
        steps = [("open", lambda: page.goto(
                     f"http://127.0.0.1:{self.port}/lab/workspaces/{workspace}/tree/{path}"
                     f"?token={self.token}", timeout=OPEN_S * 1000)),
                 ("render", ui.wait_open), ("kernel", ui.wait_kernel_idle),
                 ("run all", ui.run_all), ("read", ui.read_all), ("demos", ui.check_demos),
                 ("check", lambda: check_outputs(report)), ("screenshot", ui.final_screenshot)]
        try:
            for name, step in steps:
                t = time.monotonic()
                try:
                    step()
                except Exception as e:
                    ui.try_screenshot()  # what the UI showed when it got stuck
                    if isinstance(e, LabError):
                        raise
                    raise LabError(f"{path}: step {name!r} failed: {type(e).__name__}: "
                                   f"{str(e)[:1000]}") from e
                report.phases[name] = time.monotonic() - t
        finally:
            context.close()
            self._shutdown_sessions(path)
        report.seconds = time.monotonic() - t0
        return report

    def _shutdown_sessions(self, path):
        """Stop the notebook's kernel so kernels do not pile up over the suite."""
        try:
            for s in self._api("GET", "/api/sessions") or []:
                if s.get("path") == path:
                    self._api("DELETE", f"/api/sessions/{s['id']}")
        except (OSError, urllib.error.URLError):
            pass


class _NotebookUI:
    """The bounded steps a student takes in one open notebook."""

    def __init__(self, page, report, screenshots, presses=TIMED_PRESSES):
        self.presses = presses
        self.page = page
        self.report = report
        self.screenshots = Path(screenshots)

    def _wait(self, js, arg, seconds, what):
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            return self.page.wait_for_function(js, arg=arg, timeout=seconds * 1000,
                                               polling=200).json_value()
        except PlaywrightTimeout:
            raise LabError(f"{self.report.path}: {what} within {seconds} s "
                           f"(UI state: {self.status()})") from None

    def status(self):
        try:
            return self.page.evaluate(_STATUS_JS)
        except Exception as e:  # noqa: BLE001 - only used inside failure messages
            return f"unreadable: {e}"

    def _fail_on_dialog(self, step):
        status = self.status()
        if isinstance(status, dict) and "dialog" in status:
            raise LabError(f"{self.report.path}: a dialog blocks the notebook {step}: "
                           f"{status['dialog']!r}")

    def wait_open(self):
        n = len(self.report.nb.cells)
        opened = _js("n", """return !!document.querySelector('.jp-Dialog') || document
            .querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Notebook-cell').length === n;""")
        self._wait(opened, n, OPEN_S, f"the notebook did not show its {n} cells")
        self._fail_on_dialog("after opening")
        # Hide the file browser (Ctrl+B, as a student might) so notebook and figures get the width.
        self.page.keyboard.press("Control+b")

    def wait_kernel_idle(self):
        """Wait for a kernel that is idle; accept a kernel dialog only for the notebook's kernel.

        On a cold page JupyterLab can ask for the kernel before it has loaded the kernel specs
        (its default kernel is then unknown); a student clicks "Select" on the preselected
        kernel. A notebook without a kernelspec fails here instead.
        """
        ready = """() => {
          if (document.querySelector('.jp-Dialog')) return true;
          const panel = document.querySelector('.jp-NotebookPanel');
          const name = panel?.querySelector('[data-jp-item-name="kernelName"]')?.innerText || '';
          const ind = panel?.querySelector('.jp-Notebook-ExecutionIndicator');
          return name.trim() !== '' && !name.includes('No Kernel') &&
                 ind?.dataset.status === 'idle';
        }"""
        spec = self.report.nb.metadata.get("kernelspec", {}).get("display_name")
        for _ in range(3):
            self._wait(ready, None, KERNEL_S, "the kernel did not start and go idle")
            dialog = self.page.locator(".jp-Dialog")
            if dialog.count() == 0:
                return
            text = dialog.inner_text()
            chosen = dialog.locator("select option:checked")
            if (spec and "Select kernel for" in text and chosen.count() == 1
                    and chosen.inner_text().strip() == spec):
                dialog.locator("button.jp-mod-accept").click()
                continue
            self._fail_on_dialog("while the kernel starts"
                                 + ("" if spec else " (the notebook has no kernelspec)"))
        raise LabError(f"{self.report.path}: the kernel dialog kept coming back")

    def run_all(self):
        """Run > Run All Cells, then wait until no cell is queued and the kernel is idle."""
        self.page.get_by_role("menuitem", name="Run", exact=True).click()
        self.page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        done = _js("", """
          if (document.querySelector('.jp-Dialog')) return true;
          const prompts = [...document.querySelectorAll(
              '.jp-NotebookPanel .jp-CodeCell .jp-InputArea-prompt')].map(p => p.textContent);
          return !prompts.some(p => p.includes('*')) && prompts.some(p => /\\d/.test(p)) &&
                 idle();""")
        if not any(c.cell_type == "code" for c in self.report.nb.cells):
            return
        self._wait(done, None, RUN_S, "Run All Cells did not finish (kernel idle, no [*])")
        self.page.wait_for_timeout(300)  # and it stays finished (no cell queued right after)
        self._wait(done, None, RUN_S, "Run All Cells did not finish (kernel idle, no [*])")
        self._fail_on_dialog("after Run All Cells")

    def read_all(self):
        self.report.cells = self.read_cells()

    def read_cells(self):
        cells = self.page.evaluate(_READ_CELLS_JS)
        if cells is None or len(cells) != len(self.report.nb.cells):
            raise LabError(f"{self.report.path}: the UI shows "
                           f"{None if cells is None else len(cells)} cells, the file has "
                           f"{len(self.report.nb.cells)}")
        return cells

    def _cell(self, index):
        return self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Notebook-cell").nth(index)

    def demo_cells(self):
        return [i for i, c in enumerate(self.report.nb.cells)
                if c.cell_type == "code" and "demo" in c.get("metadata", {}).get("tags", [])]

    def check_demos(self):
        """Each demo shows sliders and a figure, and every slider move redraws the figure."""
        for i in self.demo_cells():
            if not re.search(r"\d", self.report.cells[i]["prompt"]):
                continue  # not run (an error above stopped Run All): check_outputs says so
            if not self._wait_widgets(i):
                continue
            n = self.report.cells[i]["sliders"]
            moved = (all(self._move_slider(i, j) for j in range(n))
                     and all(self._move_choice(i, j)
                             for j in range(self.report.cells[i]["choices"])))
            if moved and n and self.presses:
                self._time_presses(i, n)
        self.report.cells = self.read_cells()  # outputs after the slider moves

    def _wait_widgets(self, i):
        rendered = _js("[i, failures]", """
          const cell = cellAt(i);
          const text = cell.querySelector('.jp-Cell-outputArea')?.innerText || '';
          if (failures.some(f => f !== 'Loading widget...' && text.includes(f))) return true;
          if (widgetError(cell)) return true;
          return cell.querySelectorAll('.widget-slider').length > 0 &&
                 demoImages(cell).length > 0;""")
        try:
            self._wait(rendered, [i, list(WIDGET_FAILURES)], WIDGET_S,
                       "the demo's sliders and figure did not appear")
        except LabError:
            text = self.read_cells()[i]["text"]
            self.report.add(i, f"demo did not render sliders and a figure within {WIDGET_S} s; "
                               f"its output shows {text.strip()[:300]!r}")
            return False
        row = self.read_cells()[i]
        if row["sliders"] == 0 or not row["widget_images"]:
            return False  # check_outputs names the widget failure or the error
        self.report.cells[i] = row
        return True

    def _images(self, i):
        return self.read_cells()[i]["widget_images"]

    def _wait_redraw(self, i, before):
        """Until the demo's figure differs from `before` (or shows an error), kernel idle."""
        redrawn = _js("[i, before]", """
          const cell = cellAt(i);
          if (widgetError(cell)) return idle();
          const now = demoImages(cell).map(e => e.src);
          return now.length > 0 && JSON.stringify(now) !== JSON.stringify(before) && idle();""")
        try:
            self._wait(redrawn, [i, before], WIDGET_S, "the figure did not change")
            return True
        except LabError:
            return False

    def _press(self, handle, key, v0):
        """Focus the slider handle and press `key`; True once the slider shows a new value."""
        handle.scroll_into_view_if_needed()
        for _ in range(3):  # on a loaded machine the first focus/press can be lost
            handle.focus()
            if handle.evaluate("h => document.activeElement === h"):
                self.page.keyboard.press(key)
                try:
                    handle.page.wait_for_function(
                        "([h, v0]) => parseFloat(h.getAttribute('aria-valuenow')) !== v0",
                        arg=[handle.element_handle(), v0], timeout=5000, polling=100)
                    return True
                except Exception:  # noqa: BLE001 - a Playwright timeout: try again
                    pass
        return False

    def _move_slider(self, i, j):
        """Move slider j with one key press: the figure must redraw, without an error.

        PageUp (PageDown near the top) moves 5 steps and sends one change
        (continuous_update=False), so exactly one redraw follows. Afterwards the slider is typed
        back to its starting value, so every slider is tried from the demo's own starting state
        (a slider can matter only in some states of the others).
        """
        slider = self._cell(i).locator(".widget-slider").nth(j)
        handle = slider.locator(".noUi-handle")
        readout = slider.locator(".widget-readout")
        label = slider.locator(".widget-label").inner_text().strip() or f"#{j + 1}"
        start_text = readout.inner_text().strip()
        start = self._images(i)
        v0, lo, hi = (float(handle.get_attribute(f"aria-value{a}")) for a in ("now", "min", "max"))
        # A SelectionSlider (ordered options) is moved by one option; it cannot be typed into.
        # (course.figures.demo marks it with the class course-options).
        typed = "course-options" not in (slider.get_attribute("class") or "").split()
        if typed:
            key = "PageUp" if v0 < lo + 0.6 * (hi - lo) else "PageDown"
        else:
            key = "ArrowRight" if v0 < hi else "ArrowLeft"
        if not self._press(handle, key, v0):
            self.report.add(i, f"slider {label!r} did not move from {v0:g} when focused and "
                               f"sent {key}")
            return False
        v1 = float(handle.get_attribute("aria-valuenow"))
        if not self._redrew_cleanly(i, start, f"moving slider {label!r} from {v0:g} to {v1:g}"):
            return False
        self.report.sliders_moved += 1
        if not self.report.screenshot:
            self.screenshot()  # the first demo right after a slider move, for a reviewer
        moved = self._images(i)
        if typed:
            readout.fill(start_text)
            readout.press("Enter")
        else:
            self._press(handle, "ArrowLeft" if key == "ArrowRight" else "ArrowRight", v1)
        return self._redrew_cleanly(i, moved, f"moving slider {label!r} back to {start_text}")

    def _redrew_cleanly(self, i, before, move):
        """True when the figure of cell i changed since the images `before` and no widget
        callback raised; otherwise one report line saying which, after `move` (what was done)."""
        if not self._wait_redraw(i, before):
            self.report.add(i, f"{move} did not change the figure within {WIDGET_S} s")
            return False
        errors = [o for o in self.read_cells()[i]["outputs"] if o["in_widget"] and is_traceback(o)]
        if errors:
            self.report.add(i, f"{move} raised in the widget callback: "
                               f"{_last_line(errors[0]['text'])}")
            return False
        return True

    def _move_choice(self, i, j):
        """Click every other option of toggle-button group j, then its starting option again:
        each click must redraw the figure, without an error."""
        group = self._cell(i).locator(".widget-toggle-buttons").nth(j)
        label = group.locator(".widget-label").inner_text().strip() or f"#{j + 1}"
        buttons = group.locator("button.widget-toggle-button")
        names = [b.strip() for b in buttons.all_inner_texts()]
        start = group.locator("button.mod-active").inner_text().strip()
        for name in [n for n in names if n != start] + [start]:
            before = self._images(i)
            buttons.nth(names.index(name)).click()
            if not self._redrew_cleanly(i, before, f"choosing {name!r} in {label!r}"):
                return False
            self.report.sliders_moved += name != start
        return True

    def _time_presses(self, i, n):
        """report.latency_ms[i]: per key press, ms until the new figure is decoded on the page.

        Timed inside the page (keydown to the decoded new <img>), so the harness's polling
        does not count. The presses go round the sliders in pairs, there and back (PageUp then
        PageDown, or the reverse), so each slider moves from about the demo's starting state.
        """
        times, key = [], None
        for k in range(self.presses):
            handle = (self._cell(i).locator(".widget-slider").nth(k // 2 % n)
                      .locator(".noUi-handle"))
            v0, lo, hi = (float(handle.get_attribute(f"aria-value{a}"))
                          for a in ("now", "min", "max"))
            if k % 2 == 0:
                key = "PageUp" if v0 < lo + 0.6 * (hi - lo) else "PageDown"
            else:
                key = "PageDown" if key == "PageUp" else "PageUp"
            before = self._images(i)
            self.page.evaluate(_js("[i, before]", _ARM_TIMER_BODY), [i, before])
            if not (self._press(handle, key, v0) and self._wait_redraw(i, before)):
                break
            ms = self._wait(_js("", "return window.__demoTimer.ms;"), None, WIDGET_S,
                            "the new figure did not decode")
            times.append(ms)
        self.report.latency_ms[i] = times

    def screenshot(self, cell=None):
        """The viewport as screenshots/<kind>-<notebook>.png (scrolled to `cell` if given)."""
        if cell is not None:
            self._cell(cell).scroll_into_view_if_needed()
        self.screenshots.mkdir(parents=True, exist_ok=True)
        stem = self.report.path.replace("/", "-").removesuffix(".ipynb")
        out = self.screenshots / f"{stem}.png"
        self.page.screenshot(path=str(out))
        self.report.screenshot = str(out)

    def try_screenshot(self):
        try:
            self.screenshot()
        except Exception:  # noqa: BLE001 - only for a failure that is being reported anyway
            pass

    def final_screenshot(self):
        """On a problem, show the first problem cell; else keep the demo shot (or the top)."""
        if self.report.problems:
            self.screenshot(min(p.cell for p in self.report.problems))
        elif not self.report.screenshot:
            self.screenshot()


def course_notebooks(kind):
    """Paths like 'solutions/03_backward.ipynb', relative to the repository (and the lab root)."""
    return [p.relative_to(REPO).as_posix() for p in sorted((REPO / kind).glob("[0-9]*.ipynb"))]


def notebook_test(kind):
    """A test that opens each notebook of `kind` (solutions or notebooks) in the real JupyterLab
    UI, runs it with Run > Run All Cells and moves every slider of every demo (a screenshot lands
    in screenshots/). The two kinds live in two test files so that pytest -n 2 --dist loadfile
    runs them at once."""
    import pytest  # here: the harness itself also serves the benchmark scripts

    @pytest.mark.parametrize("path", course_notebooks(kind))
    def test(lab, path):
        assert_runs_cleanly(lab, path)
    return test


def copy_course(repo, dest):
    """A throwaway copy of solutions/ and notebooks/ (JupyterLab autosaves what it opens)."""
    for name in ("solutions", "notebooks"):
        src = Path(repo) / name
        if src.is_dir():
            shutil.copytree(src, Path(dest) / name,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        else:
            (Path(dest) / name).mkdir(parents=True)
    return Path(dest)


def demo_label(report, i):
    """A demo cell's last line of code (its `DEMO.show()` call), for timing tables."""
    lines = [ln.strip() for ln in report.nb.cells[i].source.splitlines() if ln.strip()]
    return lines[-1] if lines else f"cell {i + 1}"


def assert_runs_cleanly(lab, path):
    """Run one course notebook in the UI, print what was measured, fail with the problems."""
    report = lab.run_notebook(path)
    print(f"{path}: {report.seconds:.1f} s, {report.sliders_moved} slider moves, "
          f"screenshot {report.screenshot}")
    print("  " + ", ".join(f"{k} {v:.1f} s" for k, v in report.phases.items()))
    for i, times in report.latency_ms.items():
        print(f"  {demo_label(report, i)}: key press to new figure, median "
              f"{statistics.median(times):.0f} ms of {len(times)} presses" if times else
              f"  {demo_label(report, i)}: no timed press")
    for warning in report.warnings:
        print(f"  stderr (not an error): {warning}")
    assert not report.problems, report.failure_message()
