"""JupyterLab as `make lab` and Binder start it (their JUPYTER_CONFIG_PATH names this folder).

A JupyterLab terminal's `python` is the course environment's, so the course's commands
(`python -m course.selfgrade ...`) work there, from any folder: the server's own environment
goes first on PATH (kernels and terminals inherit it), and terminals run bash with
terminal.bashrc, which puts it first again after ~/.bashrc (conda's or pyenv's setup would
otherwise win). labconfig/page_config.json turns
off JupyterLab's news pop-up, which covered figures on first start.
"""

import os
import shutil
import sys
from pathlib import Path

c = get_config()  # noqa: F821 - traitlets defines it in config files
ENV_BIN = str(Path(sys.executable).parent)  # .venv/bin under `make lab`; Binder's environment
os.environ["PATH"] = ENV_BIN + os.pathsep + os.environ.get("PATH", "")
os.environ["COURSE_ENV_BIN"] = ENV_BIN
if sys.prefix != sys.base_prefix:  # a virtual environment: say so, as `activate` would
    os.environ["VIRTUAL_ENV"] = sys.prefix
if shutil.which("bash"):
    rcfile = Path(__file__).resolve().with_name("terminal.bashrc")
    c.ServerApp.terminado_settings = {"shell_command": [shutil.which("bash"), "--rcfile",
                                                       str(rcfile)]}
