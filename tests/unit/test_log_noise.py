"""A peer's garbage must not fill the log through pynetdicom's DUL."""

from __future__ import annotations

import logging
import threading

import pytest

from cardiogate.logs import PeerNoiseFilter, setup_logging


def _dul_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "pynetdicom.dul" in line]


def test_a_burst_of_unknown_pdus_logs_one_line_per_connection(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("INFO")
    dul = logging.getLogger("pynetdicom.dul")

    def connection() -> None:
        for pdu_type in range(200):
            dul.error(f"Unknown PDU type received '0x{pdu_type:02X}'")

    threads = [threading.Thread(target=connection) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dul.error("The received PDU is shorter than expected (40 of 171 bytes received)")
    lines = _dul_lines(capsys)
    assert sum("Unknown PDU type" in line for line in lines) == 3
    assert any("shorter than expected" in line for line in lines)


def test_a_new_burst_after_a_quiet_spell_is_logged_again() -> None:
    noise = PeerNoiseFilter(quiet_seconds=0.0)
    record = logging.LogRecord("pynetdicom.dul", logging.ERROR, "", 0, "Unknown PDU type", (), None)
    assert noise.filter(record)
    assert noise.filter(record)


def test_a_peer_traceback_becomes_one_line_unless_debugging(
    capsys: pytest.CaptureFixture[str],
) -> None:
    dul = logging.getLogger("pynetdicom.dul")
    for level, expect_traceback in (("INFO", False), ("DEBUG", True)):
        setup_logging(level)
        try:
            raise AssertionError("item length")
        except AssertionError as exc:
            dul.exception(exc)
        err = capsys.readouterr().err
        assert ("Traceback" in err) is expect_traceback
        assert "AssertionError" in err
    setup_logging("INFO")
