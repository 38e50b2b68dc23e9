"""A real headless Chromium for the tests of pages, kept offline: every request leaving for
another host than the one under test is refused and recorded, and so is every script error.

Needs Debian's ``chromium`` (``CHROMIUM`` names another binary) and the ``playwright`` package;
a test is skipped, saying which is missing, without them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest


def chromium() -> str:
    """The Chromium binary to drive; skips the test when there is none."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name) if name else None
        if found:
            return found
    pytest.skip("no Chromium on this machine (apt-get install chromium)")


@contextlib.contextmanager
def offline_page(base: str, *, expected: tuple[str, ...] = (),
                 **context_options: Any) -> Iterator[tuple[Any, list[str]]]:
    """A page that may reach only ``base``, and the list of what else it asked, of script
    errors, and of errors it logged (but those containing one of ``expected``)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    elsewhere: list[str] = []
    local = urlsplit(base).netloc
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), headless=True)
        context = browser.new_context(**context_options)

        def guard(route: Any) -> None:
            url = route.request.url
            if urlsplit(url).netloc == local or url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                elsewhere.append(url)
                route.abort()

        def logged(message: Any) -> None:
            if message.type == "error" and not any(e in message.text for e in expected):
                elsewhere.append(f"console: {message.text}")

        context.route("**/*", guard)
        tab = context.new_page()
        tab.on("pageerror", lambda error: elsewhere.append(f"script error: {error}"))
        if expected:
            tab.on("console", logged)
        try:
            yield tab, elsewhere
        finally:
            browser.close()
