"""Browser fixtures: one system Chromium per test session, driven by Playwright.

Playwright's own browser download does not work on our machines, so the
tests use the distribution's ``/usr/bin/chromium`` (``apt-get install
chromium``); override with ``BUNDLER_CHROMIUM``. Screenshots go to a temporary
folder, or to ``BUNDLER_SCREENSHOT_DIR`` when set.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

from tests.browser.bundles import Bundles, build_bundles

CHROMIUM = os.environ.get("BUNDLER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 720}

# Runs before the page's own script: records CSP violations, so a test can
# prove the strict policy neither blocks the player nor lets anything else run.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        # fail loudly rather than skip: a skipped browser suite looks green
        pytest.fail(f"{CHROMIUM} not found: install it with `apt-get install -y chromium`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """Opens pages in fresh contexts (``new_context`` options allowed); closes them after
    the test and fails it if a page threw an uncaught error."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make(**options: Any) -> Page:
        # reduced motion makes the page's fades instant: screenshots need no waits
        ctx = browser.new_context(**{"viewport": DESKTOP, "reduced_motion": "reduce", **options})
        ctx.add_init_script(WATCH_CSP)
        contexts.append(ctx)
        page = ctx.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield make
    for ctx in contexts:
        ctx.close()
    assert errors == [], "uncaught errors in the player"


@pytest.fixture
def page(new_page: Callable[..., Page]) -> Page:
    return new_page()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("BUNDLER_SCREENSHOT_DIR")
    if configured:
        folder = Path(configured)
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="session")
def bundles(pg_admin_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Bundles:
    return build_bundles(pg_admin_uri, tmp_path_factory)
