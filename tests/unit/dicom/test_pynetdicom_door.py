"""What cardiogate.dicom.pynetdicom_door relies on in pynetdicom, checked against the
installed release (written for pynetdicom 3.0.4; pyproject.toml pins the releases these pass
on). A failure here means a pynetdicom release moved something the door uses: fix the door
before widening the pin.

The first tests check names and signatures; the loopback tests check that each hook is still
reached by a real association through the listener's server class.
"""

from __future__ import annotations

import inspect
import logging
import queue
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
from pynetdicom import AE, evt
from pynetdicom.acse import ACSE
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dul import DULServiceProvider
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import AssociationServer, AssociationSocket, RequestHandler

from cardiogate.dicom import pynetdicom_door as door
from cardiogate.dicom.admission import AdmissionGate, AssociationSlots
from cardiogate.dicom.listener import CardiogateServer, open_listen_socket

# -- names and signatures -------------------------------------------------------------------


def _parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_sleeps_made_waits_are_time_sleep_calls_in_the_named_loops() -> None:
    assert DULServiceProvider.run_reactor.__code__.co_name == door.DUL_LOOP
    assert Association._run_reactor.__code__.co_name == door.ACCEPTOR_LOOP
    assert "time.sleep(self._run_loop_delay)" in inspect.getsource(DULServiceProvider.run_reactor)
    assert "time.sleep(0.001)" in inspect.getsource(Association._run_reactor)
    # the clocks find the DUL and the association as the thread they run in
    assert issubclass(DULServiceProvider, threading.Thread)
    assert issubclass(Association, threading.Thread)


def test_the_wrapped_and_read_attributes_have_the_expected_shape() -> None:
    assert _parameters(DULServiceProvider.send_pdu) == ["self", "primitive"]
    assert isinstance(DIMSEServiceProvider(Association(AE(), "acceptor")).msg_queue, queue.Queue)
    assert _parameters(AssociationSocket.recv) == ["self", "nr_bytes"]
    assert isinstance(inspect.getattr_static(AssociationSocket, "assoc"), property)


def test_the_overridden_acse_and_handler_methods_have_the_expected_signatures() -> None:
    assert _parameters(ACSE.__init__) == ["self", "assoc"]
    assert _parameters(ACSE._negotiate_as_acceptor) == ["self"]
    assert "self._negotiate_as_acceptor()" in inspect.getsource(ACSE.negotiate_association)
    assert _parameters(ACSE.send_reject) == ["self", "result", "source", "diagnostic"]
    assert _parameters(RequestHandler._create_association) == ["self"]
    assert "request_handler" in _parameters(AssociationServer.__init__)


def test_an_ae_keeps_its_servers_in_a_list() -> None:
    assert AE()._servers == []


# -- a real association on loopback ---------------------------------------------------------


@dataclass
class Acceptor:
    """A server built as the listener builds it, and what its associations showed."""

    ae: AE
    server: CardiogateServer
    port: int
    thread: threading.Thread
    associations: list[Association] = field(default_factory=list)
    stored_bytes: list[int] = field(default_factory=list)
    rejected: list[Association] = field(default_factory=list)


@pytest.fixture
def acceptor() -> Iterator[Acceptor]:
    door.install()
    ae = AE(ae_title="DOORSCP")
    ae.maximum_pdu_size = 0  # unlimited: a large data set arrives in one PDU
    ae.network_timeout = 0.5
    ae.acse_timeout = 2  # a stalled A-ASSOCIATE-RQ's association ends soon after its test
    ae.add_supported_context(Verification)
    ae.add_supported_context(SecondaryCaptureImageStorage, ExplicitVRLittleEndian)
    listen_socket = open_listen_socket("127.0.0.1", 0)
    running = Acceptor(ae, None, listen_socket.getsockname()[1], None)  # type: ignore[arg-type]

    def on_echo(event: Any) -> int:
        running.associations.append(event.assoc)
        return 0x0000

    def on_store(event: Any) -> int:
        running.stored_bytes.append(len(event.request.DataSet.getvalue()))
        return 0x0000

    handlers: list[Any] = [
        (evt.EVT_C_ECHO, on_echo),
        (evt.EVT_C_STORE, on_store),
        (evt.EVT_REJECTED, lambda event: running.rejected.append(event.assoc)),
        (evt.EVT_CONN_CLOSE, lambda event: door.release(event.assoc)),
    ]
    server = ae.make_server(
        listen_socket.getsockname(),
        evt_handlers=handlers,
        server_class=CardiogateServer,
        listen_socket=listen_socket,
    )
    assert isinstance(server, CardiogateServer)
    server.gate = AdmissionGate(["DOORSCU"], AssociationSlots(8), 0, lambda: 0)
    door.register_server(ae, server)
    running.server = server
    running.thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    running.thread.start()
    yield running
    ae.shutdown()  # finds the server through register_server
    running.thread.join(timeout=5)
    assert not running.thread.is_alive(), "AE.shutdown() did not stop the registered server"


def _requestor(calling: str = "DOORSCU") -> AE:
    ae = AE(ae_title=calling)
    ae.maximum_pdu_size = 0
    ae.acse_timeout = 5
    ae.add_requested_context(Verification)
    ae.add_requested_context(SecondaryCaptureImageStorage, ExplicitVRLittleEndian)
    return ae


def _wait_until_closed(acceptor: Acceptor) -> None:
    deadline = time.monotonic() + 5
    while acceptor.server.active_associations and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not acceptor.server.active_associations, "the acceptor association did not end"


def test_an_admitted_association_gets_every_hook_and_its_loops_wait_for_events(
    acceptor: Acceptor, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits = {"dul": 0, "reactor": 0}
    dul_wait, reactor_wait = door.wait_for_dul_work, door.wait_for_message

    def counted_dul_wait(dul: Any, timeout: float) -> None:
        waits["dul"] += 1
        dul_wait(dul, timeout)

    def counted_reactor_wait(assoc: Any, timeout: float) -> None:
        waits["reactor"] += 1
        reactor_wait(assoc, timeout)

    monkeypatch.setattr(door, "wait_for_dul_work", counted_dul_wait)
    monkeypatch.setattr(door, "wait_for_message", counted_reactor_wait)

    assoc = _requestor().associate("127.0.0.1", acceptor.port, ae_title="DOORSCP")
    assert assoc.is_established
    statuses = [assoc.send_c_echo().Status for _ in range(5)]
    assoc.release()
    _wait_until_closed(acceptor)

    assert statuses == [0x0000] * 5
    served = acceptor.associations[0]
    assert type(served.acse).__name__ == "_GatedACSE"
    assert isinstance(served.dul.socket, door.FastAssociationSocket)
    assert served.cardiogate_prepared  # type: ignore[attr-defined]
    assert served.cardiogate_slot  # type: ignore[attr-defined]
    assert served.dul.cardiogate_wake is None  # type: ignore[attr-defined]  # released on EVT_CONN_CLOSE
    assert waits["dul"] > 0, f"DULServiceProvider.{door.DUL_LOOP} never slept through the door"
    assert waits["reactor"] > 0, f"Association.{door.ACCEPTOR_LOOP} never slept through it"


def test_a_pdu_larger_than_the_first_buffer_arrives_whole(acceptor: Acceptor) -> None:
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.EncapsulatedDocument = b"\x5a" * (3 * door.FIRST_ALLOCATION)  # 3 MiB, one PDU
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian

    assoc = _requestor().associate("127.0.0.1", acceptor.port, ae_title="DOORSCP")
    assert assoc.is_established
    status = assoc.send_c_store(ds)
    assoc.release()
    _wait_until_closed(acceptor)

    assert status.Status == 0x0000
    assert len(acceptor.stored_bytes) == 1
    assert acceptor.stored_bytes[0] > 3 * door.FIRST_ALLOCATION


def test_a_refused_association_gets_the_gates_reason_and_one_rejected_event(
    acceptor: Acceptor,
) -> None:
    received: list[Any] = []
    assoc = _requestor(calling="STRANGER").associate(
        "127.0.0.1",
        acceptor.port,
        ae_title="DOORSCP",
        evt_handlers=[(evt.EVT_ACSE_RECV, lambda event: received.append(event.primitive))],
    )
    assert assoc.is_rejected
    _wait_until_closed(acceptor)

    reply = received[-1]
    # rejected-permanent, DUL service user, calling-AE-title-not-recognized (PS3.8 9.3.4)
    assert (reply.result, reply.result_source, reply.diagnostic) == (0x01, 0x01, 0x03)
    assert len(acceptor.rejected) == 1
    assert acceptor.rejected[0].cardiogate_outcome == "rejected_calling_ae"  # type: ignore[attr-defined]


def test_a_pdu_that_stops_arriving_closes_the_connection_within_the_network_timeout(
    acceptor: Acceptor, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=door.__name__)
    with socket.create_connection(("127.0.0.1", acceptor.port), timeout=5) as peer:
        peer.sendall(b"\x01\x00" + struct.pack(">I", 1000) + b"x" * 10)  # 10 of 1000 bytes
        started = time.monotonic()
        try:
            closed = peer.recv(1) == b""
        except ConnectionResetError:
            closed = True
        elapsed = time.monotonic() - started

    assert closed, "the acceptor kept the connection of a stalled PDU open"
    assert elapsed < 3.0, f"closing a stalled PDU took {elapsed:.1f} s (network timeout 0.5 s)"
    assert "10 of 1000 bytes within 0.5 s" in caplog.text
