"""The images' HEALTHCHECK: exit 0 when this container's ``GET /readyz`` answers 200.

Reads the HTTP host and port from cardiogate's own settings (environment and
``CARDIOGATE_CONFIG``), so a changed ``CARDIOGATE_HTTP_PORT`` needs no change here. A
wildcard listen address is reached over loopback. Any other answer, a refused connection or
a timeout exits 1 with the reason on stderr, which ``docker inspect`` shows.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from cardiogate.config import load_settings
from cardiogate.errors import ConfigurationError

WILDCARDS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}
TIMEOUT_SECONDS = 4.0


def readyz_url(http_host: str, http_port: int) -> str:
    host = WILDCARDS.get(http_host, http_host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{http_port}/readyz"


def main() -> int:
    try:
        settings = load_settings()
    except ConfigurationError as e:
        sys.stderr.write(f"unhealthy: {e}\n")
        return 1
    url = readyz_url(settings.http_host, settings.http_port)
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            status = int(response.status)
    except urllib.error.HTTPError as e:  # 503: /readyz names the failing check in its body
        sys.stderr.write(f"not ready: {url} answered {e.code}: {e.read(500)!r}\n")
        return 1
    except OSError as e:  # refused, reset, timed out (URLError is an OSError)
        sys.stderr.write(f"not ready: {url}: {e}\n")
        return 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
