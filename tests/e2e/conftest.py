"""Browser-test fixtures: a real `streamlit run app.py` server and a system Chromium driven by Playwright.

  server        one server per test module (its own empty runs dir, so trained models never touch the repo); a
                test that needs other settings (a host password, a prepared runs dir) starts its own with run_server
  browser       one Chromium per session; a missing browser FAILS with a message saying what to install
  open_page     factory: open_page(url) -> the app loaded in a NEW browser context (its own Streamlit
                session); at teardown, fails the test if a Streamlit exception box is on any such page
  page          open_page(server)

Page actions and the server process are in e2e_helpers.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect, sync_playwright

from e2e_helpers import CHROMIUM_ARGS, WAIT_MS, assert_no_exception, chromium_path, new_page, run_server

expect.set_options(timeout=WAIT_MS)  # every expect(...) waits the suite's one timeout, not Playwright's 5 s


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def server(tmp_path_factory, runs_dir):
    """One server for the module, its output in a file."""
    with run_server(runs_dir, tmp_path_factory.mktemp("server") / "streamlit.log") as url:
        yield url


# --- the browser -------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            b, reason = None, str(exc).splitlines()[0]
        if b is None:
            pytest.fail(
                f"Cannot start Chromium ({path or 'Playwright own build'}): the browser tests need one.\n"
                "Install the distribution's package (apt-get install chromium), or point CHROMIUM_PATH at a "
                "Chromium/Chrome binary; scripts/test.sh does this for you.\n"
                f"Playwright said: {reason}",
                pytrace=False,
            )
        yield b
        b.close()


@pytest.fixture
def open_page(browser):
    """Factory for pages in new browser contexts (each one its own Streamlit session); closed afterwards."""
    pages: list[Page] = []

    def _open(url: str, **context_options) -> Page:  # e.g. a phone's viewport=, has_touch=, is_mobile=
        p = new_page(browser, url, **context_options)
        pages.append(p)
        return p

    yield _open
    try:
        for p in pages:
            assert_no_exception(p)
    finally:
        for p in pages:
            p.context.close()


@pytest.fixture
def page(open_page, server) -> Page:
    """The app loaded in a new browser context on the module's server."""
    return open_page(server)
