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
from collections.abc import Callable
from typing import Any, NamedTuple

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

    def screen(
        self, assoc: Any, calling_ae_title: str, called_ae_title: str
    ) -> tuple[int, int, int] | None:
        """Admit or refuse an association being negotiated: the A-ASSOCIATE-RJ reason to
        refuse it with (the refusal is logged and the association marked with the outcome),
        or None to go on (the association is marked as holding a slot). pynetdicom_door's
        request handler calls this before pynetdicom's own negotiation."""
        rejection = self.admit(calling_ae_title, called_ae_title)
        if rejection is None:
            assoc.cardiogate_slot = True
            return None
        _log_rejection(assoc, calling_ae_title, called_ae_title, rejection)
        assoc.cardiogate_outcome = rejection.outcome
        return rejection.reason


def host_port(host: str, port: int) -> str:
    """``IP:port``, or ``[IPv6]:port``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def peer_address(assoc: Any) -> str:
    """``IP:port`` of the association's requestor."""
    try:
        return host_port(str(assoc.requestor.address), int(assoc.requestor.port))
    except (AttributeError, ValueError):  # no address information: not a TCP peer
        return "unknown address"


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
