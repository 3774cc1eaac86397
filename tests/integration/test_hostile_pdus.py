"""Raw garbage and truncated PDUs on the DICOM port of ``cardiogate serve``: after each,
the service accepts a normal association and stores a valid instance, /readyz stays 200,
and nothing partial is stored or recorded."""

from __future__ import annotations

import random
import socket
import struct
import time
from collections.abc import Iterator

import httpx
import pytest
from cardiogate_phantoms import make_ct_series

from cardiogate.dicom.status import Status
from peers import ServeProcess, send, start_serve, stop_serve


def _rq(called: bytes = b"CARDIOGATE", calling: bytes = b"HOSTILE") -> bytes:
    """A valid A-ASSOCIATE-RQ (PS3.8 9.3.2) proposing CT Image Storage, Explicit VR LE."""
    app = b"1.2.840.10008.3.1.1.1"
    abstract, syntax = b"1.2.840.10008.5.1.4.1.1.2", b"1.2.840.10008.1.2.1"
    pc_items = (
        b"\x30\x00" + struct.pack(">H", len(abstract)) + abstract
        + b"\x40\x00" + struct.pack(">H", len(syntax)) + syntax
    )  # fmt: skip
    pc = b"\x20\x00" + struct.pack(">H", 4 + len(pc_items)) + b"\x01\x00\x00\x00" + pc_items
    max_len = b"\x51\x00\x00\x04" + struct.pack(">I", 16384)
    user = b"\x50\x00" + struct.pack(">H", len(max_len)) + max_len
    body = (
        b"\x00\x01\x00\x00" + called.ljust(16) + calling.ljust(16) + b"\x00" * 32
        + b"\x10\x00" + struct.pack(">H", len(app)) + app + pc + user
    )  # fmt: skip
    return b"\x01\x00" + struct.pack(">I", len(body)) + body


def _p_data_beyond() -> bytes:
    return b"\x04\x00" + struct.pack(">I", 2**31) + b"\x00\x00\x00\x10\x01\x03" + b"x" * 10


def _absurd_item_lengths() -> bytes:
    rq = bytearray(_rq())
    app_at = rq.index(b"\x10\x00", 74)
    rq[app_at + 2 : app_at + 4] = b"\xff\xff"  # the application context runs past the PDU
    return bytes(rq)


CASES = {
    "random bytes": lambda: random.Random(8).randbytes(4096),
    "A-ASSOCIATE-RQ cut short": lambda: _rq()[:40],
    "P-DATA-TF longer than sent": _p_data_beyond,
    "A-ASSOCIATE-RQ with absurd item lengths": _absurd_item_lengths,
    "silence": lambda: b"",
    "unknown PDU type": lambda: b"\x99\x00\x00\x00\x00\x04abcd",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    running = start_serve(
        tmp_path_factory.mktemp("hostile-pdus") / "data",
        env={"CARDIOGATE_ACSE_TIMEOUT_SECONDS": "1", "CARDIOGATE_NETWORK_TIMEOUT_SECONDS": "2"},
    )
    yield running
    stop_serve(running)


def _closed_by_peer(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (TimeoutError, ConnectionResetError):
        return False
    return False


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_the_service_closes_a_hostile_connection(server: ServeProcess, case: str) -> None:
    with socket.create_connection(("127.0.0.1", server.dicom_port)) as sock:
        payload = CASES[case]()
        if payload:
            sock.sendall(payload)
        assert _closed_by_peer(sock, 5), "the service kept a hostile connection open"


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_bytes_leave_the_service_serving(server: ServeProcess, case: str) -> None:
    with socket.create_connection(("127.0.0.1", server.dicom_port)) as sock:
        payload = CASES[case]()
        if payload:
            sock.sendall(payload)
        time.sleep(0.5)
    ds = make_ct_series(40 + len(case), n_slices=1, rows=16, columns=16).datasets
    assert send(server.dicom_port, ds) == [Status.SUCCESS]
    assert httpx.get(server.base_url + "/readyz", timeout=5).status_code == 200
    spool = server.data_dir / "spool"
    assert list((spool / ".tmp").iterdir()) == []
    assert server.proc.poll() is None


@pytest.mark.slow
def test_garbage_does_not_flood_the_log(server: ServeProcess) -> None:
    noise = random.Random(9).randbytes(64 * 1024)  # ~10,000 six-byte "PDU headers"
    with socket.create_connection(("127.0.0.1", server.dicom_port)) as sock:
        sock.sendall(noise)
        assert _closed_by_peer(sock, 5)
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log
    # One line per hostile connection of this module, not one per header.
    assert log.count("Unknown PDU type") <= 2 * (2 * len(CASES) + 1)
