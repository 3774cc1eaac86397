"""Logging set-up. Log lines carry UIDs, AE titles, sizes and reasons, never patient data."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import warnings
import weakref
from datetime import UTC, datetime

import pydicom.config


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pynetdicom logs every association and DIMSE message at INFO; keep ours, quiet theirs.
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    dul = logging.getLogger("pynetdicom.dul")
    dul.filters[:] = [f for f in dul.filters if not isinstance(f, PeerNoiseFilter)]
    dul.addFilter(PeerNoiseFilter())
    quiet_pydicom()
    quiet_highdicom()


class PeerNoiseFilter(logging.Filter):
    """Keeps a broken or hostile peer from filling the log through pynetdicom's DUL.

    The DUL logs an ERROR for every 6-byte header it cannot read, hundreds for a few KiB of
    noise, and a traceback for a PDU it cannot decode. This keeps the first unknown-PDU line
    of a burst on each connection's thread (a burst ends after ``quiet_seconds`` without
    one) and, unless the root logger is at DEBUG, turns a traceback into one line naming the
    exception.
    """

    def __init__(self, quiet_seconds: float = 5.0) -> None:
        super().__init__()
        self.quiet_seconds = quiet_seconds
        # Keyed by the thread object: thread idents are reused by later connections.
        self._last_unknown: weakref.WeakKeyDictionary[threading.Thread, float] = (
            weakref.WeakKeyDictionary()
        )

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Unknown PDU type"):
            now = time.monotonic()
            thread = threading.current_thread()  # filters run in the logging thread
            last = self._last_unknown.get(thread)
            self._last_unknown[thread] = now
            return last is None or now - last >= self.quiet_seconds
        if record.exc_info and not logging.getLogger().isEnabledFor(logging.DEBUG):
            exc = record.exc_info[1]
            detail = f": {exc}" if str(exc) else ""
            record.msg, record.args = "%s%s", (type(exc).__name__, detail)
            record.exc_info = record.exc_text = None
        return True


def quiet_pydicom() -> None:
    """pydicom's value-validation warnings would quote attribute values, patient names and
    birth dates included, into the log: never validate on read."""
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    logging.getLogger("pydicom").setLevel(logging.ERROR)


def quiet_highdicom() -> None:
    """highdicom quotes the patient's name when it finds the name oddly encoded, in a log
    line and a ``UserWarning`` (``highdicom.base``): keep both out of the log, errors only."""
    logging.getLogger("highdicom").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module="highdicom")
