"""The C-STORE SCU: sends due outbox rows to each destination, one association per batch.

Every C-STORE's status is checked (PS3.4 B.2.3): success and the warnings that mean the
object was stored mark the row ``sent``; a failure status, a refused or lost association, or
an unreadable file schedules a retry with backoff, and after the last attempt the row is a
dead letter. A job is ``delivered`` only once every row of every destination is sent
(:meth:`cardiogate.store.outbox.Outbox.record`).
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Sequence
from typing import Any

import pydicom
from pydicom import uid
from pydicom.errors import InvalidDicomError
from pynetdicom import AE, _config

from cardiogate.config import Destination, Settings
from cardiogate.dicom.backoff import Backoff
from cardiogate.dicom.outbox_files import OutboxFiles
from cardiogate.dicom.status import STORED
from cardiogate.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from cardiogate.errors import CardiogateError
from cardiogate.metrics import (
    DELIVERY_DEAD_LETTERS,
    DELIVERY_OBJECTS,
    DELIVERY_OLDEST_PENDING,
    DELIVERY_PENDING,
    DELIVERY_RETRIES,
    JOB_TURNAROUND,
)
from cardiogate.store import Store
from cardiogate.store.outbox import Outbox, OutboxRow

log = logging.getLogger(__name__)

_config.LOG_HANDLER_LEVEL = "none"

_UNCOMPRESSED = [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian]


class Sender:
    """One thread that delivers the outbox to every configured destination."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        files: OutboxFiles,
        outbox: Outbox | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.settings = settings
        self.files = files
        self.outbox = outbox or Outbox(store)
        self.backoff = backoff or Backoff(
            settings.delivery_initial_delay_seconds,
            settings.delivery_max_delay_seconds,
            settings.delivery_max_attempts,
        )
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass ---------------------------------------------------------------------------

    def run_once(self) -> bool:
        """Send one due batch to each destination; True when a batch was full (more due)."""
        more = False
        s = self.settings
        lease = s.acse_timeout_seconds + s.dimse_timeout_seconds * s.delivery_batch_size
        for destination in s.destinations:
            rows = self.outbox.claim_due(destination.name, s.delivery_batch_size, lease)
            if rows:
                self._deliver(destination, rows)
                more = more or len(rows) == s.delivery_batch_size
        self._update_gauges()
        return more

    def _deliver(self, destination: Destination, rows: list[OutboxRow]) -> None:
        sent, failed = self._send(destination, rows)
        recorded = self.outbox.record(sent, failed, self.backoff)
        name = destination.name
        DELIVERY_OBJECTS.labels(name, "sent").inc(recorded.sent)
        DELIVERY_OBJECTS.labels(name, "failed").inc(len(failed))
        DELIVERY_OBJECTS.labels(name, "dead").inc(recorded.dead)
        DELIVERY_RETRIES.labels(name).inc(recorded.retried)
        if failed:
            log.warning(
                "delivery to %s: %d of %d object(s) failed, first: %s",
                name,
                len(failed),
                len(rows),
                failed[0][1],
            )
        for row, error in failed:
            if row.attempts + 1 >= self.backoff.max_attempts:
                log.error(
                    "dead letter: object %s of job %d for %s after %d attempts: %s",
                    row.SOPInstanceUID,
                    row.job_id,
                    name,
                    row.attempts + 1,
                    error,
                )
        for job in recorded.delivered:
            if job.turnaround_seconds is not None:
                JOB_TURNAROUND.labels(job.task or "none").observe(job.turnaround_seconds)
            log.info("job %d delivered", job.id)

    def _send(
        self, destination: Destination, rows: Sequence[OutboxRow]
    ) -> tuple[list[OutboxRow], list[tuple[OutboxRow, str]]]:
        """C-STORE every row over one association; (sent rows, failed rows with reasons)."""
        sent: list[OutboxRow] = []
        failed: list[tuple[OutboxRow, str]] = []
        datasets: dict[int, pydicom.Dataset] = {}
        for row in rows:
            try:
                datasets[row.id] = pydicom.dcmread(self.files.absolute(row.path))
            except (OSError, InvalidDicomError, CardiogateError) as e:
                failed.append((row, f"the outbox file cannot be read ({type(e).__name__})"))
        if not datasets:
            return sent, failed
        assoc = self._associate(destination, list(datasets.values()))
        if not assoc.is_established:
            reason = "association rejected" if assoc.is_rejected else "association failed"
            failed += [(r, f"{reason} by {destination.name}") for r in rows if r.id in datasets]
            return sent, failed
        try:
            for row in rows:
                if row.id not in datasets:
                    continue
                if not assoc.is_established:
                    failed.append((row, "association lost before this object was sent"))
                    continue
                outcome = self._store(assoc, datasets[row.id])
                if outcome is None:
                    sent.append(row)
                else:
                    failed.append((row, outcome))
        finally:
            if assoc.is_established:
                assoc.release()
        return sent, failed

    def _associate(self, destination: Destination, datasets: list[pydicom.Dataset]) -> Any:
        s = self.settings
        ae = AE(ae_title=s.ae_title)
        ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
        ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
        ae.acse_timeout = s.acse_timeout_seconds
        ae.dimse_timeout = s.dimse_timeout_seconds
        ae.network_timeout = s.network_timeout_seconds
        syntaxes: dict[str, list[str]] = {}
        for ds in datasets:
            found = syntaxes.setdefault(str(ds.SOPClassUID), list(_UNCOMPRESSED))
            ts = str(ds.file_meta.TransferSyntaxUID)
            if ts not in found:
                found.insert(0, ts)
        for sop_class, transfer_syntaxes in syntaxes.items():
            ae.add_requested_context(sop_class, transfer_syntaxes)
        tls_args = (tls_context(destination), destination.host) if destination.tls else None
        assoc = ae.associate(
            destination.host, destination.port, ae_title=destination.ae_title, tls_args=tls_args
        )
        if assoc.is_established:
            # pynetdicom leaves Nagle on: each small C-STORE PDU would then wait ~40 ms for
            # the peer's delayed ACK on loopback (see dicom.listener for the SCP side)
            sock = assoc.dul.socket.socket if assoc.dul.socket else None
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return assoc

    @staticmethod
    def _store(assoc: Any, ds: pydicom.Dataset) -> str | None:
        """None when the destination stored the object, else why not."""
        try:
            rsp = assoc.send_c_store(ds)
        except ValueError as e:  # no accepted presentation context for this SOP class
            return f"not accepted: {e!s:.200}"
        status = rsp.get("Status")
        if status is None:
            return "no C-STORE response (timeout or association aborted)"
        if int(status) in STORED:
            return None
        return f"C-STORE status 0x{int(status):04X}"

    def _update_gauges(self) -> None:
        stats = self.outbox.stats()
        DELIVERY_DEAD_LETTERS.set(stats.dead)
        DELIVERY_PENDING.set(stats.pending)
        if stats.oldest_pending is None:
            DELIVERY_OLDEST_PENDING.set(0)
        else:
            age = (self.outbox.clock() - stats.oldest_pending).total_seconds()
            DELIVERY_OLDEST_PENDING.set(max(0.0, age))

    # -- the thread -------------------------------------------------------------------------

    def wake(self) -> None:
        """Look at the outbox now (a job was just reported)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_once():
                    continue
            except CardiogateError as e:  # the store is unreachable: wait and retry
                log.error("delivery could not reach the store: %s", e)
            except Exception:  # the guard: a bug must not stop delivery for good
                log.exception("delivery pass failed unexpectedly")
            self._wake.wait(self.settings.delivery_poll_seconds)
            self._wake.clear()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if not self.outbox.store.replica.shared:  # no other sender claims this outbox's rows
            released = self.outbox.release_claims()
            if released:
                log.warning("outbox: %d object(s) claimed before a restart are due now", released)
        for destination in self.settings.destinations:
            DELIVERY_RETRIES.labels(destination.name)
            for outcome in ("sent", "failed", "dead"):
                DELIVERY_OBJECTS.labels(destination.name, outcome)
        self._thread = threading.Thread(target=self._loop, name="delivery", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the batch in progress (rows not yet recorded are due again later)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)


def tls_context(destination: Destination) -> ssl.SSLContext:
    """A client TLS context for ``destination``: TLS 1.2 or later, the peer's certificate
    verified against ``tls_ca_file`` (or the system store) and its host name checked."""
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH,
        cafile=str(destination.tls_ca_file) if destination.tls_ca_file else None,
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if destination.tls_cert_file is not None and destination.tls_key_file is not None:
        context.load_cert_chain(str(destination.tls_cert_file), str(destination.tls_key_file))
    return context
