"""Debian's Chromium (``/usr/bin/chromium``) for the browser tests, driven by Playwright
without downloading a browser; skipped where it is missing, a failure under CI (``.ci/run``
installs it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# no sandbox (CI runs as root in a container), and nothing that reaches beyond loopback
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@contextmanager
def chromium(*extra_args: str) -> Iterator[Browser]:
    """A launched Chromium with :data:`CHROMIUM_ARGS` and ``extra_args``."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):  # .ci/run installs chromium: missing there is a failure
            pytest.fail(f"Debian's chromium is not installed ({CHROMIUM})")
        pytest.skip(f"Debian's chromium is not installed ({CHROMIUM}); .ci/run installs it")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *extra_args]
        )
        try:
            yield launched
        finally:
            launched.close()
