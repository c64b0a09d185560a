# Two commands for everyone: `make lab` and `make test`. Both build .venv once and reuse it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
# JupyterLab refuses to run as root (containers, CI, Binder-like machines) unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# Tests run two notebook kernels at once (pytest -n 2) on 2 cores: a multi-threaded BLAS in each
# oversubscribes the machine and made small matrix products 10x slower. One thread per process.
ONE_THREAD := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: install install-dev browser-deps sandbox-deps lab test test-fast lint release check-release bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when the pins or the package metadata change. Students (make lab) get only
# what the notebooks need; make test adds the grader's, test, lint and browser tools.
$(STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

# The browser tests (pytest -m browser) drive Debian's Chromium through Playwright; a browser
# download is impossible here, so install the Debian package when we can (root + apt-get).
# Where we cannot, say so in one line; the browser tests then skip with one line of their own.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "browser-deps: installing Debian's chromium for the browser tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends chromium >/dev/null; } \
	      || echo "browser-deps: could not install chromium; the browser tests will be skipped"; \
	  else \
	    echo "browser-deps: no chromium and no root apt-get; the browser tests will be skipped"; \
	  fi; }

# The grader runs every student process under bubblewrap (bwrap, Debian's `bubblewrap`);
# install it when we can (root + apt-get), else say so in one line: the sandbox tests then skip
# and the grader refuses to run without --no-sandbox.
sandbox-deps:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "sandbox-deps: installing Debian's bubblewrap for the grader's sandbox"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends bubblewrap >/dev/null; } \
	      || echo "sandbox-deps: could not install bubblewrap; the sandbox tests will be skipped"; \
	  else \
	    echo "sandbox-deps: no bwrap and no root apt-get; the sandbox tests will be skipped"; \
	  fi; }

lab: install
	$(ONE_THREAD) $(BIN)/jupyter lab $(ROOT_FLAG) notebooks/01_why_normalize.ipynb

test: install-dev browser-deps sandbox-deps
	$(ONE_THREAD) $(BIN)/python -m pytest -n 2 --dist loadfile -rs

# Unit tests only, no notebook execution: the inner loop while editing course/.
test-fast: install-dev
	$(ONE_THREAD) $(BIN)/python -m pytest tests -q -n 2 -m "not browser"

lint: install-dev
	$(BIN)/ruff check course tests benchmarks

release: install
	$(BIN)/python -m course.release

check-release: install
	$(BIN)/python -m course.release --check

# Every benchmarks/bench*.py prints its own table (benchmarks are never timed tests).
bench: install-dev
	for f in benchmarks/bench*.py; do $(ONE_THREAD) $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
