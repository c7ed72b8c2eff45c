"""The browser the tests in this folder drive."""

import os

import pytest

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture
def chromium():
    """A headless Debian Chromium, closed after the test."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls a test makes
    # happen between browser steps, never concurrently with them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
