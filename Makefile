# Two commands for everyone: `make lab` and `make test`. Both build .venv once and reuse it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
TORCH_STAMP := $(VENV)/.installed-torch
# JupyterLab refuses to run as root (containers, CI, Binder-like machines) unless told it may.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# Tests run two notebook kernels at once (pytest -n 2) on 2 cores: a multi-threaded BLAS in each
# oversubscribes the machine and made small matrix products 10x slower. One thread per process.
ONE_THREAD := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: install install-dev torch-deps browser-deps sandbox-deps lab test test-fast lint release check-release edition bench clean

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

# PyTorch only for the tests: notebook 04's framework cells must really run in CI, not skip.
$(TORCH_STAMP): $(DEV_STAMP) requirements-torch.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-torch.txt
	touch $(TORCH_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

torch-deps: $(TORCH_STAMP)

# apt_dep(command, Debian package, target, what needs it): install a Debian package the tests
# need when it is missing and we can (root + apt-get); where we cannot, say so in one line. Under
# `make test` the tests that need it then fail with that reason (COURSE_NO_SKIP); under plain
# pytest they skip with one line.
define apt_dep
	@command -v $(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "$(3): installing Debian's $(2)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends $(2) >/dev/null; } \
	      || echo "$(3): could not install $(2); $(4) cannot run"; \
	  else \
	    echo "$(3): no $(1) and no root apt-get; $(4) cannot run"; \
	  fi; }
endef

# The browser tests (pytest -m browser) drive Debian's Chromium through Playwright: a browser
# download is impossible here.
browser-deps:
	$(call apt_dep,chromium,chromium,browser-deps,the browser tests)

# The grader runs every student process under bubblewrap (bwrap) with a seccomp filter built by
# libseccomp (pyseccomp, pinned in requirements-dev.txt, loads it); without them the grader
# refuses to run unless given --no-sandbox.
sandbox-deps:
	$(call apt_dep,bwrap,bubblewrap,sandbox-deps,the sandbox tests)
	@ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || \
	  { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends libseccomp2 >/dev/null; } || \
	  echo "sandbox-deps: no libseccomp2; the sandbox tests will be skipped"

# jupyter-config/: a terminal's `python` is the course's (python -m course.selfgrade works there,
# from any folder) and JupyterLab's news pop-up stays off. Binder's binder/start does the same.
LAB_CONFIG := JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter-config$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}"

lab: install
	$(ONE_THREAD) $(LAB_CONFIG) $(BIN)/jupyter lab $(ROOT_FLAG) notebooks/01_why_normalize.ipynb

# Everything the tests need was installed on purpose, so nothing may skip: COURSE_REQUIRE_TORCH
# makes a framework cell that would skip fail, COURSE_NO_SKIP does the same for any test.
# Each notebook copy is executed once, by the browser suite (tests/browser).
test: install-dev torch-deps browser-deps sandbox-deps
	$(ONE_THREAD) COURSE_REQUIRE_TORCH=1 COURSE_NO_SKIP=1 $(BIN)/python -m pytest -n 2 \
	  --dist loadfile -rs

# Unit tests only, no notebook execution and no throwaway venvs (nbgrader, Binder, the wheel):
# the inner loop while editing course/.
test-fast: install-dev
	$(ONE_THREAD) $(BIN)/python -m pytest tests -q -n 2 -m "not browser and not slow"

lint: install-dev
	$(BIN)/ruff check course tests benchmarks

release: install
	$(BIN)/python -m course.release

check-release: install
	$(BIN)/python -m course.release --check

# The student edition an instructor who grades publishes (README, "What students get").
edition: install
	rm -rf student-edition
	$(BIN)/python -m course.edition student-edition

# Every benchmarks/bench*.py prints its own table (benchmarks are never timed tests).
bench: install-dev
	for f in benchmarks/bench*.py; do $(ONE_THREAD) $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
