"""Logging set-up. Log lines carry UIDs, AE titles, sizes and reasons, never patient data."""

from __future__ import annotations

import json
import logging
import sys
import warnings
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
    quiet_pydicom()
    quiet_highdicom()


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
