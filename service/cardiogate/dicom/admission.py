"""Who may open an association: calling-AE allowlist, our called AE title, free disk,
association limit.

pynetdicom's own checks apply per process; these apply across every listener process and
answer with the A-ASSOCIATE-RJ reason a PACS understands (PS3.8 9.3.4): permanent for an
unknown calling or called AE, transient when we are busy or short of disk, so the PACS
retries later. Each refusal is logged with the peer's address, both AE titles and the reason.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from pynetdicom import evt
from pynetdicom.acse import ACSE
from pynetdicom.transport import AssociationSocket, RequestHandler

from cardiogate.dicom import reactor
from cardiogate.dicom.status import Reject
from cardiogate.logs import FIELDS

log = logging.getLogger(__name__)

# rejected-permanent, DUL service user, called-AE-title-not-recognized (PS3.8 9.3.4)
CALLED_AE_NOT_RECOGNISED = (0x01, 0x01, 0x07)


class AssociationSlots:
    """A counter of open associations shared by every listener process."""

    def __init__(self, maximum: int, value: Any | None = None) -> None:
        self.maximum = maximum
        if value is None:
            value = multiprocessing.get_context("spawn").Value("i", 0)
        self._value = value

    @property
    def shared(self) -> Any:
        return self._value

    @property
    def active(self) -> int:
        return int(self._value.value)

    def try_acquire(self) -> bool:
        with self._value.get_lock():
            if self._value.value >= self.maximum:
                return False
            self._value.value += 1
            return True

    def release(self) -> None:
        with self._value.get_lock():
            self._value.value = max(0, self._value.value - 1)


class Rejection(NamedTuple):
    """Why an association is refused: the metric's outcome, the A-ASSOCIATE-RJ triple and
    what the operator can do about it."""

    outcome: str
    reason: tuple[int, int, int]
    explanation: str


# PS3.8 9.3.4: the names of the A-ASSOCIATE-RJ result and reason values used here
_RESULTS = {0x01: "rejected-permanent", 0x02: "rejected-transient"}
_DIAGNOSTICS = {
    (0x01, 0x03): "calling-AE-title-not-recognized",
    (0x01, 0x07): "called-AE-title-not-recognized",
    (0x03, 0x01): "temporary-congestion",
    (0x03, 0x02): "local-limit-exceeded",
}


def reject_name(reason: tuple[int, int, int]) -> str:
    """``rejected-permanent, called-AE-title-not-recognized``: the standard's names."""
    result, source, diagnostic = reason
    return (
        f"{_RESULTS.get(result, f'result {result}')}, "
        f"{_DIAGNOSTICS.get((source, diagnostic), f'source {source} reason {diagnostic}')}"
    )


class AdmissionGate:
    """Decides whether a new association is admitted, and holds a slot for it if so.

    ``called_ae_title`` is ours when the Called AE Title is checked, None to accept any.
    """

    def __init__(
        self,
        allowed_calling_aets: list[str],
        slots: AssociationSlots,
        min_free_bytes: int,
        free_bytes: Callable[[], int],
        called_ae_title: str | None = None,
    ) -> None:
        self.allowed = frozenset(allowed_calling_aets)
        self.slots = slots
        self.min_free_bytes = min_free_bytes
        self.free_bytes = free_bytes
        self.called_ae_title = None if called_ae_title is None else called_ae_title.strip()

    def admit(self, calling_ae_title: str, called_ae_title: str) -> Rejection | None:
        """None to admit (a slot is then held), else why not. AE titles compare without
        their leading and trailing spaces, which are not significant (PS3.5 6.2)."""
        if self.allowed and calling_ae_title.strip() not in self.allowed:
            return Rejection(
                "rejected_calling_ae",
                Reject.CALLING_AE_NOT_RECOGNISED,
                "the calling AE title is not in CARDIOGATE_ALLOWED_CALLING_AETS; add it there "
                "if this peer may send",
            )
        if self.called_ae_title is not None and called_ae_title.strip() != self.called_ae_title:
            return Rejection(
                "rejected_called_ae",
                CALLED_AE_NOT_RECOGNISED,
                f"the called AE title is not ours ({self.called_ae_title}); configure the "
                f"peer to call {self.called_ae_title}, or set "
                "CARDIOGATE_REQUIRE_CALLED_AE_TITLE=false",
            )
        if self.min_free_bytes:
            free = self.free_bytes()
            if free < self.min_free_bytes:
                return Rejection(
                    "rejected_disk",
                    Reject.TEMPORARY_CONGESTION,
                    f"{free // 2**20} MiB free in the data directory, under "
                    f"CARDIOGATE_MIN_FREE_DISK_MB ({self.min_free_bytes // 2**20}); the peer "
                    "should retry later",
                )
        if not self.slots.try_acquire():
            return Rejection(
                "rejected_busy",
                Reject.LOCAL_LIMIT_EXCEEDED,
                f"all {self.slots.maximum} association slots are in use "
                "(CARDIOGATE_MAX_ASSOCIATIONS); the peer should retry later",
            )
        return None


def host_port(host: str, port: int) -> str:
    """``IP:port``, or ``[IPv6]:port``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def peer_address(assoc: Any) -> str:
    """``IP:port`` of the association's requestor."""
    try:
        return host_port(str(assoc.requestor.address), int(assoc.requestor.port))
    except (AttributeError, ValueError):  # no address information: not a TCP peer
        return "unknown address"


class GatedACSE(ACSE):
    """ACSE that consults the server's :class:`AdmissionGate` before negotiating."""

    def _negotiate_as_acceptor(self) -> None:
        assoc = self.assoc
        gate: AdmissionGate | None = getattr(assoc._server, "gate", None)
        if gate is not None:
            primitive = self.requestor.primitive
            calling = "" if primitive is None else str(primitive.calling_ae_title)
            called = "" if primitive is None else str(primitive.called_ae_title)
            rejection = gate.admit(calling, called)
            if rejection is not None:
                _log_rejection(assoc, calling, called, rejection)
                assoc.cardiogate_outcome = rejection.outcome  # type: ignore[attr-defined]
                self.send_reject(*rejection.reason)
                evt.trigger(assoc, evt.EVT_REJECTED, {})
                assoc.kill()
                return
            assoc.cardiogate_slot = True  # type: ignore[attr-defined]
        super()._negotiate_as_acceptor()


def _log_rejection(assoc: Any, calling: str, called: str, rejection: Rejection) -> None:
    peer = peer_address(assoc)
    name = reject_name(rejection.reason)
    log.warning(
        "association from %s refused (calling AE %r, called AE %r): %s [A-ASSOCIATE-RJ %s]",
        peer,
        calling.strip(),
        called.strip(),
        rejection.explanation,
        name,
        extra={
            FIELDS: {
                "peer": peer,
                "calling_ae_title": calling.strip(),
                "called_ae_title": called.strip(),
                "outcome": rejection.outcome,
                "reject_reason": name,
            }
        },
    )


# A PDU's first buffer; larger PDUs grow it (doubling) as their bytes arrive.
_FIRST_ALLOCATION = 1 << 20


class FastAssociationSocket(AssociationSocket):
    """Reads a PDU with a few large ``recv_into`` calls instead of 4 KiB ``recv`` calls, and
    gives up on a PDU that stops arriving.

    pynetdicom reads the rest of a PDU from a blocking socket once its header is in, so a
    peer that announces more bytes than it sends held the connection and its thread until
    the peer went away. Here each wait for bytes lasts at most ``read_timeout`` (the
    association's network timeout, set on the socket) and a whole read at most that long
    again, so a trickle cannot hold it either. A read cut short returns what arrived, which
    pynetdicom treats as the transport closing: the association is aborted and closed.
    """

    read_timeout: float | None = None

    def recv(self, nr_bytes: int) -> bytearray:
        sock = self.socket
        if sock is None:  # already closed: nothing read, which pynetdicom takes as closed
            return bytearray()
        # The length comes from the peer: allocate as bytes arrive, never what it claims.
        buffer = bytearray(min(nr_bytes, _FIRST_ALLOCATION))
        nr_read = 0
        deadline = None if self.read_timeout is None else time.monotonic() + self.read_timeout
        while nr_read < nr_bytes:
            if nr_read == len(buffer):
                buffer.extend(bytes(min(len(buffer), nr_bytes - nr_read)))
            try:
                with memoryview(buffer) as view:
                    n = sock.recv_into(view[nr_read:])
            except TimeoutError:
                self._stalled(nr_read, nr_bytes)
                break
            if not n:  # connection closed
                break
            nr_read += n
            if deadline is not None and nr_read < nr_bytes and time.monotonic() > deadline:
                self._stalled(nr_read, nr_bytes)
                break
        # Short when closed or stalled: what arrived, as pynetdicom returns it.
        del buffer[nr_read:]
        return buffer

    def _stalled(self, nr_read: int, nr_bytes: int) -> None:
        log.warning(
            "peer stopped sending mid-PDU (%d of %d bytes within %.0f s); closing the connection",
            nr_read,
            nr_bytes,
            self.read_timeout or 0,
        )


class GatedRequestHandler(RequestHandler):
    """Creates acceptor associations with the gated ACSE and the faster socket reader."""

    def _create_association(self) -> Any:
        assoc = super()._create_association()
        assoc.acse = GatedACSE(assoc)
        # The socket is already set and pynetdicom refuses a second one; only ``recv``
        # differs, so give the existing object the faster class.
        transport: Any = assoc.dul.socket
        transport.__class__ = FastAssociationSocket
        transport.read_timeout = assoc.network_timeout
        if transport.socket is not None:
            # Also bounds a send to a peer that stops reading: pynetdicom takes the timeout
            # as the transport closing.
            transport.socket.settimeout(assoc.network_timeout)
        reactor.prepare(assoc)
        return assoc
