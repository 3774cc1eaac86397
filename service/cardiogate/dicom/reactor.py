"""Event-driven waits for pynetdicom's polling loops.

pynetdicom runs two loops per association that poll with fixed 1 ms sleeps: the DUL thread
(socket in, PDUs out) and the association reactor (DIMSE messages in). Each C-STORE crosses
them three times, so up to ~3 ms of every instance was spent asleep. These stand-ins for
the ``time`` module inside those two pynetdicom modules keep the same maximum sleep but
wake as soon as the thing the loop waits for is there: socket data or an outgoing PDU for
the DUL, a decoded message for the reactor. Every other sleep in those modules (shutdown
delays, pause loops) and every thread we did not prepare sleeps as before.
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
from typing import Any

from pynetdicom import association as _association
from pynetdicom import dul as _dul

log = logging.getLogger(__name__)


class _DULClock:
    """``time`` for pynetdicom.dul: sleep until socket data, a queued PDU, or the timeout."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        thread = threading.current_thread()
        if sys._getframe(1).f_code.co_name != "run_reactor":  # only the DUL's main loop
            time.sleep(seconds)
            return
        wake: socket.socket | None = getattr(thread, "cardiogate_wake", None)
        transport = getattr(thread, "socket", None)
        raw = getattr(transport, "socket", None)
        if wake is None or raw is None:
            time.sleep(seconds)
            return
        if isinstance(raw, ssl.SSLSocket) and raw.pending():  # decrypted, select cannot see it
            return
        try:
            readable, _, _ = select.select([raw, wake], [], [], seconds)
            if wake in readable:
                wake.recv(4096)
        except (OSError, ValueError):  # closed while we waited: behave as before
            time.sleep(seconds)


class _ReactorClock:
    """``time`` for pynetdicom.association: sleep until a DIMSE message or the timeout."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        thread = threading.current_thread()
        if (
            not getattr(thread, "cardiogate_prepared", False)
            or sys._getframe(1).f_code.co_name != "_run_reactor"  # only the reactor loop
        ):
            time.sleep(seconds)
            return
        messages = thread.dimse.msg_queue  # type: ignore[attr-defined]
        with messages.not_empty:
            if not messages.queue:
                messages.not_empty.wait(seconds)


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
