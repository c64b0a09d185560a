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
