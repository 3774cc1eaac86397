"""With JSON logs on, every line on stderr is one JSON object: Python warnings, library
loggers and exceptions that end a thread included."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset

from cardiogate.logs import FIELDS, setup_logging


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """What the service writes to stderr, with JSON logs on."""
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)  # setup_logging's handler writes here
    with warnings.catch_warnings():  # whatever showwarning it finds is put back afterwards
        warnings.simplefilter("always")
        setup_logging("INFO", "json")
        yield buffer
    monkeypatch.undo()
    setup_logging("INFO")


def _lines(stderr: io.StringIO) -> list[dict[str, Any]]:
    lines = stderr.getvalue().splitlines()
    assert lines
    return [json.loads(line) for line in lines]  # fails on any line that is not JSON


def test_a_pydicom_warning_is_one_json_line_without_its_source_line(stderr: io.StringIO) -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 999"
    ds.SeriesDescription = "x"
    ds.decode()  # pydicom warns of the unknown character set, whatever the validation mode
    (entry,) = _lines(stderr)
    assert entry["logger"] == "py.warnings"
    assert entry["level"] == "WARNING"
    assert entry["message"] == (
        "UserWarning: Unknown encoding 'ISO_IR 999' - using default encoding instead"
    )
    assert entry["warning_category"] == "UserWarning"
    assert entry["warning_origin"].startswith("pydicom/charset.py:")  # not site-packages/...


def test_library_loggers_and_a_thread_exception_are_json(stderr: io.StringIO) -> None:
    logging.getLogger("pynetdicom.dul").error("Unknown PDU type received '0x00'")
    logging.getLogger("pydicom").error("pydicom line")
    logging.getLogger("uvicorn.error").warning("uvicorn line")
    logging.getLogger("alembic.runtime.migration").warning("alembic line")

    def broken() -> None:
        raise RuntimeError("thread broke")

    thread = threading.Thread(target=broken, name="broken-thread")
    thread.start()
    thread.join()
    entries = _lines(stderr)
    assert [e["logger"] for e in entries] == [
        "pynetdicom.dul",
        "pydicom",
        "uvicorn.error",
        "alembic.runtime.migration",
        "cardiogate",
    ]
    crash = entries[-1]
    assert crash["message"] == "uncaught exception in thread broken-thread"
    assert "RuntimeError: thread broke" in crash["exception"]


def test_fields_given_with_a_record_become_keys(stderr: io.StringIO) -> None:
    logging.getLogger("cardiogate.test").warning(
        "rejected", extra={FIELDS: {"peer": "127.0.0.1:4000", "level": "not replaced"}}
    )
    (entry,) = _lines(stderr)
    assert entry["peer"] == "127.0.0.1:4000"
    assert entry["level"] == "WARNING"  # a field never overwrites the record's own keys


def test_text_logs_carry_the_warning_too(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        setup_logging("INFO")
        warnings.warn("a text-mode warning", UserWarning, stacklevel=1)
    monkeypatch.undo()
    setup_logging("INFO")
    line = buffer.getvalue().splitlines()[0]
    assert " WARNING py.warnings " in line
    assert "UserWarning: a text-mode warning" in line
