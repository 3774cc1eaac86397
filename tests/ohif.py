"""OHIF Viewer 3.13 for the tests: the built viewer of npm's ``@ohif/app`` (unpacked by
``make viewer`` into tests/viewer/node_modules) served by a small threaded HTTP server on a
free loopback port, with our own ``app-config.js`` whose one DICOMweb data source is
``/dicom-web`` on the same origin, proxied to Orthanc's DICOMweb plugin (so no CORS)."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image, ImageStat
from playwright.sync_api import ConsoleMessage, Locator, Page, Route
from playwright.sync_api import TimeoutError as PlaywrightTimeout

REPO = Path(__file__).resolve().parents[1]
OHIF_APP = REPO / "tests" / "viewer" / "node_modules" / "@ohif" / "app"
OHIF_VERSION = "3.13.2"  # pinned in tests/viewer/install.sh
DICOMWEB = "/dicom-web"

# OHIF's default config (dist/app-config.js) with the public demo server replaced by ours, the
# investigational-use dialog off (it would cover the screenshots) and nothing that calls out
# of loopback. The data source follows OHIF's own Orthanc example
# (platform/app/public/config/docker-nginx-orthanc.js).
APP_CONFIG = """window.config = {
  name: 'cardiogate-tests',
  routerBasename: '/',
  extensions: [],
  modes: [],
  customizationService: {},
  showStudyList: true,
  maxNumberOfWebWorkers: 2,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  investigationalUseDialog: { option: 'never' },
  showErrorDetails: 'always',
  defaultDataSourceName: 'orthanc',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'orthanc',
      configuration: {
        friendlyName: 'Orthanc (tests)',
        name: 'orthanc',
        wadoUriRoot: window.location.origin + '$DICOMWEB',
        qidoRoot: window.location.origin + '$DICOMWEB',
        wadoRoot: window.location.origin + '$DICOMWEB',
        qidoSupportsIncludeField: false,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: false,
        supportsWildcard: true,
        staticWado: false,
        singlepart: 'bulkdata,video',
        bulkDataURI: { enabled: true },
        omitQuotationForMultipartRequest: true,
      },
    },
  ],
};
""".replace("$DICOMWEB", DICOMWEB)

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class OhifServer:
    """The viewer on ``url``; ``/dicom-web/...`` goes to ``orthanc_url`` + the same path."""

    dist: Path
    orthanc_url: str
    httpd: ThreadingHTTPServer | None = None
    proxied: list[tuple[str, int]] = field(default_factory=list)  # (path, status) of each call

    @property
    def url(self) -> str:
        assert self.httpd is not None
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> None:
        server = self

        class Handler(_ViewerHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(server.dist), **kwargs)

            def proxy_target(self) -> tuple[str, list[tuple[str, int]]]:
                return server.orthanc_url, server.proxied

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def viewer_url(self, StudyInstanceUID: str) -> str:
        return f"{self.url}/viewer?StudyInstanceUIDs={StudyInstanceUID}"

    def failed_requests(self, since: int = 0) -> list[tuple[str, int]]:
        """The DICOMweb requests (from the ``since``-th on) that Orthanc answered with an
        error or did not answer."""
        return [(path, status) for path, status in self.proxied[since:] if status >= 400]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the browser dropped a request it no longer needed (page closed)
        super().handle_error(request, client_address)


class _ViewerHandler(SimpleHTTPRequestHandler):
    """Static files of dist/ with the single-page app's routes answered by index.html, our
    app-config.js, and a pass-through proxy for the DICOMweb paths."""

    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".json": "application/json",
    }

    def proxy_target(self) -> tuple[str, list[tuple[str, int]]]:
        raise NotImplementedError

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test reports what matters; a line per request would drown it

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == DICOMWEB or path.startswith(DICOMWEB + "/"):
            self._proxy()
        elif path == "/app-config.js":
            self._send(200, "text/javascript", APP_CONFIG.encode())
        elif path != "/" and Path(self.translate_path(path)).is_file():
            super().do_GET()
        else:  # a route of the viewer (/viewer, /segmentation, ...): the app resolves it
            self.path = "/index.html"
            super().do_GET()

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _proxy(self) -> None:
        orthanc_url, proxied = self.proxy_target()
        target = urlsplit(orthanc_url)
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            conn.request("GET", self.path, headers=headers)
            response = conn.getresponse()
            body = response.read()
        except OSError:
            self._send(502, "text/plain", b"Orthanc did not answer")
            proxied.append((self.path, 502))
            return
        finally:
            conn.close()
        proxied.append((self.path, response.status))
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def ohif_dist() -> Path:
    """The built viewer; skips when ``make viewer`` has not unpacked it (fails under CI)."""
    dist = OHIF_APP / "dist"
    if not (dist / "index.html").is_file():
        message = f"OHIF viewer not unpacked at {dist}: run `make viewer`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    version = json.loads((OHIF_APP / "package.json").read_text())["version"]
    assert version == OHIF_VERSION, f"@ohif/app {version} unpacked, {OHIF_VERSION} pinned"
    return dist


def start_ohif(orthanc_url: str) -> OhifServer:
    server = OhifServer(ohif_dist(), orthanc_url)
    server.start()
    return server


# -- driving the viewer in Chromium ---------------------------------------------------------

# OHIF's first-visit tour (extensions/default onboardingCustomization, id basicViewerTour)
# would cover the viewport in every screenshot; it is skipped once marked as shown.
_NO_TOUR = "localStorage.setItem('shownTours', JSON.stringify(['basicViewerTour']))"
# A crash in a viewport: OHIF's error boundary logs it at debug level and shows this text.
ERROR_BOUNDARY = "Error Boundary"
SOMETHING_WENT_WRONG = "Something went wrong"
# "Label: 12.34 unit" as OHIF writes a NUM, on an SR annotation or in its text view
_NUM_LINE = re.compile(r"^(?P<label>[^:]+):\s*(?P<value>-?\d+(?:\.\d+)?)\s*(?P<unit>\S*)\s*$")


@dataclass(frozen=True)
class ShownNum:
    label: str
    value: float
    unit: str


def shown_nums(lines: set[str]) -> list[ShownNum]:
    """The lines that read as a labelled number."""
    found = []
    for line in lines:
        m = _NUM_LINE.match(line.strip())
        if m:
            found.append(ShownNum(m["label"].strip(), float(m["value"]), m["unit"]))
    return found


@dataclass
class ViewerPage:
    """One Chromium page on the viewer: what it logged, what it tried to fetch from outside
    loopback (refused), and a screenshot per step in ``shots``."""

    page: Page
    server: OhifServer
    shots: Path
    problems: list[str] = field(default_factory=list)  # console errors, page errors, crashes
    outside: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.first_request = len(self.server.proxied)
        self.page.add_init_script(_NO_TOUR)
        self.page.route("**/*", self._only_loopback)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

    def _only_loopback(self, route: Route) -> None:
        url = route.request.url
        if url.startswith((self.server.url + "/", "data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" or ERROR_BOUNDARY in message.text:
            self.problems.append(f"console {message.type}: {message.text}")

    def open_study(self, StudyInstanceUID: str, n_series: int) -> None:
        """The viewer on the study, once the study browser lists all its series."""
        self.page.goto(self.server.viewer_url(StudyInstanceUID))
        self.page.locator("[data-cy=viewport-pane] canvas.cornerstone-canvas").wait_for()
        self.page.wait_for_function(
            "n => document.querySelectorAll(\"[data-cy^='study-browser-thumbnail']\").length == n",
            arg=n_series,
        )

    def thumbnail(self, SeriesNumber: int) -> Locator:
        return self.page.locator(
            f"[data-cy^='study-browser-thumbnail'][data-series='{SeriesNumber}']"
        )

    def show(self, SeriesNumber: int) -> None:
        """Double-click the series in the study browser: OHIF puts it in the viewport."""
        self.thumbnail(SeriesNumber).dblclick()

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=path)
        return path

    def crashed(self) -> bool:
        return any(ERROR_BOUNDARY in p for p in self.problems) or (
            self.page.get_by_text(SOMETHING_WENT_WRONG).count() > 0
        )

    def annotation_lines(self) -> set[str]:
        """The text lines drawn over the image (SR labels are SVG text, one tspan a line)."""
        lines: list[str] = self.page.eval_on_selector_all(
            "[data-cy=viewport-pane] svg text tspan", "els => els.map(e => e.textContent)"
        )
        return {line for line in lines if line}

    def viewport_text(self) -> set[str]:
        return set(self.page.locator("[data-cy=viewport-pane]").inner_text().splitlines())

    def step_measurements(
        self, steps: int, enough: Callable[[set[str]], bool] = lambda _: True, rounds: int = 3
    ) -> set[str]:
        """Every annotation line seen while the SR viewport's arrow steps through its
        measurements (each jumps to its own image), ``steps`` times a round, for up to
        ``rounds`` rounds until ``enough(seen)``: on a loaded machine an image may render
        after the wait for it, and the next round sees it."""
        seen = self.annotation_lines()
        right = self.page.locator("[data-cy=viewport-action-arrows-right]")
        for _ in range(steps * rounds):
            if enough(seen) and _ >= steps:
                break
            before = sorted(self.annotation_lines())
            right.click()
            # the next measurement may sit on the same image: then nothing changes
            with contextlib.suppress(PlaywrightTimeout):
                self.page.wait_for_function(
                    """before => JSON.stringify(Array.from(document.querySelectorAll(
                        "[data-cy=viewport-pane] svg text tspan")).map(e => e.textContent)
                        .filter(Boolean).sort()) != JSON.stringify(before)""",
                    arg=before,
                    timeout=2000,
                )
            seen |= self.annotation_lines()
        return seen

    def canvas(self) -> Image.Image:
        png = self.page.locator("[data-cy=viewport-pane] canvas.cornerstone-canvas").screenshot()
        return Image.open(io.BytesIO(png)).convert("RGB")

    def wait_canvas(self, check: Any, timeout: float = 15) -> Image.Image:
        """The viewport's canvas once ``check(image)`` holds (rendering is asynchronous);
        the last one after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        image = self.canvas()
        while not check(image) and time.monotonic() < deadline:
            self.page.wait_for_timeout(250)
            image = self.canvas()
        return image


def coloured_pixels(image: Image.Image, spread: int = 60) -> int:
    """Pixels whose channels differ by more than ``spread``: overlays on a greyscale image."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    return int(((pixels.max(axis=2) - pixels.min(axis=2)) > spread).sum())


def is_picture(image: Image.Image) -> bool:
    """Not blank: many grey levels and some contrast."""
    grey = image.convert("L")
    return len(grey.getcolors(256) or []) > 16 and ImageStat.Stat(grey).stddev[0] > 8
