"""Fixtures for the browser tests: one JupyterLab + Chromium per test process, on a copy."""

import functools

import pytest
from lab_harness import REPO, Lab, copy_course, missing_browser_reason

SCREENSHOTS = REPO / "screenshots"  # one PNG per notebook, for a reviewer (gitignored)


@functools.cache
def _missing_browser():
    return missing_browser_reason()


def pytest_runtest_setup(item):
    """Without Chromium or Playwright every browser test skips, all with this one line."""
    reason = _missing_browser()
    if reason:
        pytest.skip(reason)  # raised here, not per test, so `-rs` folds them into one line


@pytest.fixture(scope="session")
def playwright_driver():
    """The one Playwright driver of this test process (its sync API allows one per thread)."""
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    yield driver
    driver.stop()


@pytest.fixture(scope="session")
def lab(playwright_driver, tmp_path_factory):
    """JupyterLab on a throwaway copy of solutions/ and notebooks/, torn down even on failure."""
    root = copy_course(REPO, tmp_path_factory.mktemp("lab-root"))
    with Lab(root, tmp_path_factory.mktemp("lab-state"), SCREENSHOTS,
             playwright=playwright_driver) as running:
        yield running
