"""Shared test settings."""

import os

import matplotlib
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")
# No deadlines: a 2-core CI machine under load must not turn slow examples into failures.
settings.register_profile("course", deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "course"))
