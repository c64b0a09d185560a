"""JupyterLab as `make lab` starts it (the recipe `make -n lab` prints, run for real): a terminal's
`python` is the course environment's even where ~/.bashrc puts another python first, the
self-grade command works from that terminal in any folder and from a notebook's own kernel, and
the news pop-up is off."""

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENV_BIN = Path(sys.executable).parent  # the environment the tests (and `make lab`) use
TOKEN = "course-lab-test"
NEWS_PLUGIN = "@jupyterlab/apputils-extension:announcements"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _lab_command():
    """The line `make lab` runs, for this environment."""
    out = subprocess.run(["make", "-n", "lab", f"VENV={ENV_BIN.parent}"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return next(ln for ln in out.splitlines() if "jupyter lab" in ln)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(base URL, runtime dir, fake python's folder) of a running `make lab` server."""
    home = tmp_path_factory.mktemp("home")
    # What `conda init` or pyenv leave in ~/.bashrc: another python first on PATH.
    other = home / "other-python"
    other.mkdir()
    (other / "python").write_text("#!/bin/sh\necho 'the wrong python'\n")
    (other / "python").chmod(0o755)
    (home / ".bashrc").write_text(f'export PATH="{other}:$PATH"\n')
    runtime = home / "runtime"
    port = _free_port()
    env = {"HOME": str(home), "PATH": f"{other}:/usr/local/bin:/usr/bin:/bin",
           "JUPYTER_RUNTIME_DIR": str(runtime), "SHELL": "/bin/sh"}
    if os.environ.get("PYTHONPATH"):  # a worktree tested against a shared environment
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    cmd = (_lab_command() + f" --no-browser --ServerApp.port={port} --ServerApp.ip=127.0.0.1"
           f" --IdentityProvider.token={TOKEN} --ServerApp.port_retries=0")
    log = home / "lab.log"
    server = subprocess.Popen(["bash", "-c", cmd], cwd=ROOT, env=env, stdout=log.open("w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                assert server.poll() is None, log.read_text()
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start in 120 s")
        yield base, runtime, other
    finally:  # the server and everything it started (kernels, terminals) share its session
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def _api(base, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{base}{path}?token={TOKEN}", data=data,
                                 method="GET" if body is None else "POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def _terminal(base, command, timeout=180):
    """Type `command` into a new JupyterLab terminal; what the terminal showed until it ended."""
    import websocket  # websocket-client, a jupyter_server dependency

    # what the launcher sends: the file browser's folder, "" at its root
    name = json.loads(_api(base, "/api/terminals", {"cwd": ""}))["name"]
    ws = websocket.create_connection(
        f"{base.replace('http', 'ws')}/terminals/websocket/{name}?token={TOKEN}", timeout=timeout)
    try:
        ws.send(json.dumps(["stdin", f"{command}; echo END-$((6 * 7))\r"]))
        shown, end = "", time.monotonic() + timeout
        while "END-42" not in shown and time.monotonic() < end:
            kind, *data = json.loads(ws.recv())
            if kind == "stdout":
                shown += data[0]
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "", shown)  # terminal escapes and CRs
    finally:
        ws.close()


# What the README tells students to type in a JupyterLab terminal, in any folder.
README_COMMAND = "python -m course.selfgrade 02_forward_pass"


def test_a_terminal_python_is_the_course_one_and_grades_from_any_folder(lab, tmp_path):
    base, _, other = lab
    assert f"`{README_COMMAND}`" in (ROOT / "README.md").read_text()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other_file = shlex.quote(str(ROOT / "notebooks/03_backward_pass.ipynb"))
    shown = _terminal(base, (
        f"pwd && cd {shlex.quote(str(elsewhere))} && {README_COMMAND} && "
        "python -c 'import sys, course; print(\"PY\", sys.executable, course.__file__)' && "
        f"python -m course.selfgrade {other_file}"))
    assert "the wrong python" not in shown, shown
    assert f"\n{ROOT}\n" in shown, shown  # where a new terminal opens: where make lab ran
    found = re.search(r"^PY (\S+) (\S+)$", shown, re.MULTILINE)
    assert found, shown
    py, course_file = found.groups()
    assert Path(py).parent == ENV_BIN and Path(course_file).parent == ROOT / "course", shown
    assert other not in Path(py).parents
    assert re.search(r"^  batchnorm_forward .* 0 / 3 .*not implemented yet$", shown, re.M), shown
    assert re.search(r"^  batchnorm_backward .* 0 / \d .*not implemented yet$", shown, re.M), shown


def test_grade_me_in_a_notebook_kernel_grades_that_notebook(lab, tmp_path):
    from jupyter_client import BlockingKernelClient

    base, runtime, _ = lab
    session = json.loads(_api(base, "/api/sessions", {
        "path": "03_backward_pass.ipynb", "type": "notebook",  # the server serves notebooks/
        "kernel": {"name": "python3"}}))
    client = BlockingKernelClient(connection_file=str(
        runtime / f"kernel-{session['kernel']['id']}.json"))
    client.load_connection_file()
    client.start_channels(hb=False)  # a client without a manager: no heartbeat to wait for
    try:
        client.wait_for_ready(timeout=120)
        shown = []
        reply = client.execute_interactive(
            "from course.selfgrade import grade_me\ngrade_me()", timeout=300,
            output_hook=lambda msg: shown.append(msg["content"].get("text", "")))
    finally:
        client.stop_channels()
    out = "".join(shown)
    assert reply["content"]["status"] == "ok", out
    assert "03_backward_pass (03_backward_pass.ipynb)" in out, out
    assert re.search(r"batchnorm_backward.*0 / \d.*not implemented yet", out), out


def test_the_news_pop_up_is_off(lab):
    base, _, _ = lab
    page = _api(base, "/lab")
    config = json.loads(re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page,
        re.DOTALL).group(1))
    assert NEWS_PLUGIN in config["disabledExtensions"], config["disabledExtensions"]
    # ... and that id is the plugin of this JupyterLab that asks about news
    static = Path(sys.prefix, "share/jupyter/lab/static")
    bundles = [p.read_text(errors="replace") for p in static.glob("*.js")]
    assert any(f'id:"{NEWS_PLUGIN}"' in b and "official Jupyter news" in b for b in bundles)
