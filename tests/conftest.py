"""Shared test settings."""

import os

# One BLAS thread per process (also inherited by the notebook kernels nbval starts): two test
# workers with multi-threaded BLAS oversubscribe a 2-core machine. `make test` sets this too.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import matplotlib  # noqa: E402  (after the environment is set)
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

matplotlib.use("Agg")
# No deadlines: a 2-core CI machine under load must not turn slow examples into failures.
settings.register_profile("course", deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "course"))


@pytest.fixture(scope="module")
def module_tmp(request, tmp_path_factory):
    """A fresh folder shared by one test module, for module-scoped fixtures that build files."""
    return tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])


# `make test` installs every component the tests need (PyTorch, Chromium, bubblewrap) on purpose
# and sets COURSE_NO_SKIP: there a skip means a missing install or a regression, so it fails the
# run with its reason. Elsewhere (`make test-fast`, a developer without root) a skip stays a skip,
# named in one line by `-rs`.
NO_SKIP = "COURSE_NO_SKIP"


def _skip_reason(report):
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: reason")
        return longrepr[2].removeprefix("Skipped: ")
    return str(longrepr)


def _fail_skip(report):
    if os.environ.get(NO_SKIP) and report.skipped and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report)
        report.outcome = "failed"
        report.longrepr = (f"skipped under {NO_SKIP}=1 (`make test`, where every component is "
                           f"installed and nothing may skip): {reason}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_skip(outcome.get_result())
