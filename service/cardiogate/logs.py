"""Logging set-up. Log lines carry UIDs, AE titles, sizes and reasons, never patient data.

With ``fmt="json"`` every line on stderr is one JSON object: ours, the libraries' loggers
(pynetdicom, pydicom, uvicorn, alembic), Python warnings (``logging.captureWarnings``,
logger ``py.warnings``) and exceptions that escape a thread.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
import warnings
import weakref
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import pydicom.config

# ``extra={FIELDS: {...}}`` adds these keys to a JSON line (text lines show the message only)
FIELDS = "cardiogate_fields"

# warnings.formatwarning's shape: "path:line: Category: message\n" then, when the source
# is found, "  the source line\n"
_WARNING = re.compile(r"(?P<path>.+?):(?P<line>\d+): (?P<category>\w+): (?P<text>.*)", re.DOTALL)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; a captured warning becomes its text and its origin."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.name == "py.warnings":
            entry.update(_warning_fields(entry["message"]))
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            entry.update({k: v for k, v in fields.items() if k not in entry})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _warning_fields(formatted: str) -> dict[str, str]:
    """The message, category and origin (``pydicom/charset.py:738``) of a captured
    warning, without the source line that ``warnings.formatwarning`` appends."""
    match = _WARNING.match(formatted)
    if match is None:
        return {"message": formatted.strip()}
    text = match["text"].rstrip("\n")
    head, sep, last = text.rpartition("\n  ")
    if sep and "\n" not in last:  # the source line
        text = head
    path = match["path"].replace("\\", "/")
    origin = path.rpartition("site-packages/")[2] or path
    return {
        "message": f"{match['category']}: {text}",
        "warning_category": match["category"],
        "warning_origin": f"{origin}:{match['line']}",
    }


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
    # Python warnings (pydicom's on odd input, among them) through the handler above, not
    # straight to stderr between the formatted lines. Off, then on: a warnings.catch_warnings
    # block may have put its own showwarning back since an earlier call.
    logging.captureWarnings(False)
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_exception


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    """An exception that ends a thread, as a log record instead of a bare traceback."""
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    exc_info: tuple[type[BaseException], BaseException, TracebackType | None] = (
        args.exc_type,
        args.exc_value,
        args.exc_traceback,
    )
    log = logging.getLogger("cardiogate")
    log.error("uncaught exception in thread %s", name, exc_info=exc_info)


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
