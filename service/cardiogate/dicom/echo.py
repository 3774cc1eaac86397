"""C-ECHO to a destination (Verification SOP Class, PS3.4 A.4), over TLS when it is
configured, to check from the API that a peer answers before results are sent to it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from cardiogate.config import Destination, Settings
from cardiogate.dicom.sender import tls_context
from cardiogate.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

SUCCESS = 0x0000


@dataclass(frozen=True, slots=True)
class EchoOutcome:
    success: bool
    round_trip_ms: float | None
    reason: str | None


def echo(settings: Settings, destination: Destination) -> EchoOutcome:
    """Associate, send one C-ECHO and release; the round trip covers all three."""
    ae = AE(ae_title=settings.ae_title)
    ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    ae.acse_timeout = settings.acse_timeout_seconds
    ae.dimse_timeout = settings.dimse_timeout_seconds
    ae.network_timeout = settings.network_timeout_seconds
    ae.add_requested_context(Verification)
    start = time.perf_counter()
    try:
        tls_args = (tls_context(destination), destination.host) if destination.tls else None
    except (OSError, ValueError) as e:
        return EchoOutcome(False, None, f"TLS set-up failed: {e!s:.200}")
    assoc = ae.associate(
        destination.host, destination.port, ae_title=destination.ae_title, tls_args=tls_args
    )
    if not assoc.is_established:
        why = "rejected" if assoc.is_rejected else "aborted or not reachable"
        return EchoOutcome(False, None, f"association {why}")
    try:
        rsp = assoc.send_c_echo()
    finally:
        assoc.release()
    status = rsp.get("Status") if rsp else None
    if status is None:
        return EchoOutcome(False, None, "no C-ECHO response (timeout or association aborted)")
    if int(status) != SUCCESS:
        return EchoOutcome(False, None, f"C-ECHO status 0x{int(status):04X}")
    return EchoOutcome(True, round((time.perf_counter() - start) * 1000, 1), None)
