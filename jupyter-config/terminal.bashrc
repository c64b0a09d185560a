# The shell of a JupyterLab terminal under `make lab` or Binder (jupyter_server_config.py starts
# bash with this file in place of ~/.bashrc): your own settings first, then the course
# environment first on PATH, so that `python` is the course's even where ~/.bashrc activates
# conda or pyenv.
if [ -f ~/.bashrc ]; then . ~/.bashrc; fi
if [ -n "$COURSE_ENV_BIN" ]; then PATH="$COURSE_ENV_BIN:$PATH"; hash -r; fi
