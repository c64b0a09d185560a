"""Fixtures for the browser tests: one JupyterLab + Chromium per test process, on a copy."""

import pytest
from lab_harness import REPO, Lab, copy_course, missing_browser_reason

SCREENSHOTS = REPO / "screenshots"  # one PNG per notebook, for a reviewer (gitignored)


@pytest.fixture(scope="session")
def browser_ready():
    """Skip (one reason for all) where Chromium or Playwright is missing."""
    reason = missing_browser_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def playwright_driver(browser_ready):
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
