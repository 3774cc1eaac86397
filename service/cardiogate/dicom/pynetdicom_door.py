"""Every use of pynetdicom beyond its public API, in one place.

Written against pynetdicom 3.0.4. ``tests/unit/dicom/test_pynetdicom_door.py`` fails when a
release moves any of what follows, and pyproject.toml pins the releases it passes on.

1. Event-driven waits. pynetdicom's DUL loop (``DULServiceProvider.run_reactor``) and
   acceptor loop (``Association._run_reactor``) poll with fixed 1 ms sleeps; each C-STORE
   crosses them three times, so up to ~3 ms of every instance was spent asleep. We replace
   the ``time`` module global of ``pynetdicom.dul`` and ``pynetdicom.association`` with
   clocks whose ``sleep``, called from those two functions (found by the caller's frame
   name) in a prepared association, runs :func:`wait_for_dul_work` or
   :func:`wait_for_message` instead; ``DULServiceProvider.send_pdu`` is wrapped per
   association so that a queued PDU wakes the DUL. Every other sleep sleeps as before.
2. :class:`FastAssociationSocket`: ``AssociationSocket.recv`` reading a PDU in a few large
   ``recv_into`` calls, bounded by the network timeout; swapped in by ``__class__`` since
   pynetdicom refuses a second ``set_socket``.
3. ``ACSE._negotiate_as_acceptor``, overridden to consult our admission gate first and
   refuse the way pynetdicom's own checks do (A-ASSOCIATE-RJ, EVT_REJECTED, kill).
4. ``RequestHandler._create_association``, overridden to install 1-3 on each acceptor.
5. ``ApplicationEntity._servers``, which ``AE.shutdown()`` and ``server.shutdown()`` expect
   to hold a server that ``make_server`` built.

Upstream would take 1 and 2 as changes to its own code, and they are written so:
:func:`wait_for_dul_work` is what would replace ``time.sleep(self._run_loop_delay)`` in
``run_reactor`` (with ``send_pdu`` signalling the wake-up socket), :func:`wait_for_message`
what would replace ``time.sleep(0.001)`` in ``_run_reactor``; the clocks and the frame
check are only the glue that goes away then. pydicom/pynetdicom#59 (transfers slower than
they should be, open) and PR #139 (shorter DUL sleeps, open; #103: "need to find a better
method for managing race conditions/CPU usage"). ``FastAssociationSocket.recv`` is a
drop-in body for ``AssociationSocket.recv``: pydicom/pynetdicom#620 (slow transfers of large
data sets) and #272 / #653 (a blocking read of a PDU that does not all arrive holds the DUL).
3-5 are cardiogate's own needs.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import sys
import threading
import time
from typing import Any, Protocol

from pynetdicom import association as _association
from pynetdicom import dul as _dul
from pynetdicom import evt
from pynetdicom.acse import ACSE
from pynetdicom.transport import AssociationSocket, RequestHandler

log = logging.getLogger(__name__)

# The pynetdicom functions whose sleeps become waits (checked by the door's tests).
DUL_LOOP = "run_reactor"  # DULServiceProvider.run_reactor
ACCEPTOR_LOOP = "_run_reactor"  # Association._run_reactor

# A PDU's first buffer; larger PDUs grow it (doubling) as their bytes arrive.
FIRST_ALLOCATION = 1 << 20


# -- 1. event-driven waits ------------------------------------------------------------------


def wait_for_dul_work(dul: Any, timeout: float) -> None:
    """Wait up to ``timeout`` for socket data or a PDU queued by ``send_pdu``."""
    wake: socket.socket | None = getattr(dul, "cardiogate_wake", None)
    raw = getattr(getattr(dul, "socket", None), "socket", None)
    if wake is None or raw is None:
        time.sleep(timeout)
        return
    if isinstance(raw, ssl.SSLSocket) and raw.pending():  # decrypted, select cannot see it
        return
    try:
        readable, _, _ = select.select([raw, wake], [], [], timeout)
        if wake in readable:
            wake.recv(4096)
    except (OSError, ValueError):  # closed while we waited: behave as before
        time.sleep(timeout)


def wait_for_message(assoc: Any, timeout: float) -> None:
    """Wait up to ``timeout`` for a decoded DIMSE message."""
    messages = assoc.dimse.msg_queue
    with messages.not_empty:
        if not messages.queue:
            messages.not_empty.wait(timeout)


def _called_from(name: str) -> bool:
    """Whether the clock's caller is the pynetdicom function ``name``."""
    return sys._getframe(2).f_code.co_name == name


class _DULClock:
    """``time`` for pynetdicom.dul: the DUL loop's sleep waits for work instead."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        if not _called_from(DUL_LOOP):
            time.sleep(seconds)
            return
        wait_for_dul_work(threading.current_thread(), seconds)


class _ReactorClock:
    """``time`` for pynetdicom.association: the acceptor loop's sleep waits for a message."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        thread = threading.current_thread()
        if not getattr(thread, "cardiogate_prepared", False) or not _called_from(ACCEPTOR_LOOP):
            time.sleep(seconds)
            return
        wait_for_message(thread, seconds)


def install() -> None:
    """Replace the ``time`` seen by pynetdicom's DUL and association modules (idempotent)."""
    if not hasattr(_dul, "time") or not hasattr(_association, "time"):
        log.debug("pynetdicom internals changed; keeping its polling loops as they are")
        return
    _dul.time = _DULClock()
    _association.time = _ReactorClock()


def prepare(assoc: Any) -> None:
    """Let this association's loops use the event-driven waits."""
    dul = assoc.dul
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    send_pdu = dul.send_pdu

    def send_pdu_and_wake(primitive: Any) -> None:
        send_pdu(primitive)
        with contextlib.suppress(OSError):  # full (already awake) or closed
            wake_w.send(b"\0")

    dul.send_pdu = send_pdu_and_wake
    dul.cardiogate_wake = wake_r
    dul.cardiogate_wake_pair = (wake_r, wake_w)
    assoc.cardiogate_prepared = True


def release(assoc: Any) -> None:
    """Close the wake-up pair once the association's connection is closed."""
    dul = assoc.dul
    pair = getattr(dul, "cardiogate_wake_pair", None)
    if pair is None:
        return
    dul.cardiogate_wake = None
    for sock in pair:
        sock.close()


# -- 2. reading PDUs --------------------------------------------------------------------------


class FastAssociationSocket(AssociationSocket):
    """Reads a PDU with a few large ``recv_into`` calls instead of 4 KiB ``recv`` calls, and
    gives up on a PDU that stops arriving.

    pynetdicom reads the rest of a PDU from a blocking socket once its header is in, so a
    peer that announces more bytes than it sends held the connection and its thread until
    the peer went away. Here each wait for bytes lasts at most the association's network
    timeout (set on the socket) and a whole read at most that long again, so a trickle
    cannot hold it either. A read cut short returns what arrived, which pynetdicom treats as
    the transport closing: the association is aborted and closed.
    """

    def recv(self, nr_bytes: int) -> bytearray:
        sock = self.socket
        if sock is None:  # already closed: nothing read, which pynetdicom takes as closed
            return bytearray()
        read_timeout: float | None = self.assoc.network_timeout
        # The length comes from the peer: allocate as bytes arrive, never what it claims.
        buffer = bytearray(min(nr_bytes, FIRST_ALLOCATION))
        nr_read = 0
        deadline = None if read_timeout is None else time.monotonic() + read_timeout
        while nr_read < nr_bytes:
            if nr_read == len(buffer):
                buffer.extend(bytes(min(len(buffer), nr_bytes - nr_read)))
            try:
                with memoryview(buffer) as view:
                    n = sock.recv_into(view[nr_read:])
            except TimeoutError:
                _stalled(nr_read, nr_bytes, read_timeout)
                break
            if not n:  # connection closed
                break
            nr_read += n
            if deadline is not None and nr_read < nr_bytes and time.monotonic() > deadline:
                _stalled(nr_read, nr_bytes, read_timeout)
                break
        # Short when closed or stalled: what arrived, as pynetdicom returns it.
        del buffer[nr_read:]
        return buffer


def _stalled(nr_read: int, nr_bytes: int, read_timeout: float | None) -> None:
    log.warning(
        "peer stopped sending mid-PDU (%d of %d bytes within %g s); closing the connection",
        nr_read,
        nr_bytes,
        read_timeout or 0,
    )


# -- 3. admission before negotiation ----------------------------------------------------------


class AssociationGate(Protocol):
    """What a server's ``gate`` attribute offers: the A-ASSOCIATE-RJ (result, source,
    diagnostic; PS3.8 9.3.4) to refuse an association with, or None to negotiate it."""

    def screen(
        self, assoc: Any, calling_ae_title: str, called_ae_title: str
    ) -> tuple[int, int, int] | None: ...


class _GatedACSE(ACSE):
    """ACSE that consults an :class:`AssociationGate` before negotiating as acceptor."""

    def __init__(self, assoc: Any, gate: AssociationGate) -> None:
        super().__init__(assoc)
        self.gate = gate

    def _negotiate_as_acceptor(self) -> None:
        primitive = self.requestor.primitive
        calling = "" if primitive is None else str(primitive.calling_ae_title)
        called = "" if primitive is None else str(primitive.called_ae_title)
        reason = self.gate.screen(self.assoc, calling, called)
        if reason is not None:  # refuse as pynetdicom's own checks do
            self.send_reject(*reason)
            evt.trigger(self.assoc, evt.EVT_REJECTED, {})
            self.assoc.kill()
            return
        super()._negotiate_as_acceptor()


# -- 4. each acceptor association -------------------------------------------------------------


class GatedRequestHandler(RequestHandler):
    """Creates acceptor associations with the server's gate (its ``gate`` attribute, if
    any), the faster socket reader and the event-driven waits."""

    def _create_association(self) -> Any:
        assoc = super()._create_association()
        gate: AssociationGate | None = getattr(self.server, "gate", None)
        if gate is not None:
            assoc.acse = _GatedACSE(assoc, gate)
        # The socket is already set and pynetdicom refuses a second one; only ``recv``
        # differs, so give the existing object the faster class.
        transport: Any = assoc.dul.socket
        transport.__class__ = FastAssociationSocket
        if transport.socket is not None:
            # Also bounds a send to a peer that stops reading: pynetdicom takes the timeout
            # as the transport closing.
            transport.socket.settimeout(assoc.network_timeout)
        prepare(assoc)
        return assoc


# -- 5. servers built by make_server ----------------------------------------------------------


def register_server(ae: Any, server: Any) -> None:
    """Hand ``AE.make_server``'s server to the AE as ``start_server`` does, so that
    ``server.shutdown()`` and ``AE.shutdown()`` find it."""
    ae._servers.append(server)
