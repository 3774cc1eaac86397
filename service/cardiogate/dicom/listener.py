"""The Storage SCP: one pynetdicom server per listener process, sharing one socket.

The main process opens the listening socket; extra listener processes (see
``dicom.processes``) receive a duplicate of it and accept from it too, the pre-fork model
of gunicorn, so several cores take associations while one port is bound.
"""

from __future__ import annotations

import gc
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from pydicom import uid
from pynetdicom import AE, _config, evt
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from cardiogate.config import Settings
from cardiogate.dicom import pynetdicom_door, tls
from cardiogate.dicom.admission import AdmissionGate, AssociationSlots, host_port, peer_address
from cardiogate.dicom.ingest import StoreSCPHandler
from cardiogate.dicom.spool import Spool
from cardiogate.dicom.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from cardiogate.errors import CardiogateError
from cardiogate.metrics import IngestSink
from cardiogate.store import Store

log = logging.getLogger(__name__)

# pynetdicom's per-PDU logging handlers cost CPU on every PDU; we log what matters ourselves.
_config.LOG_HANDLER_LEVEL = "none"
pynetdicom_door.install()

# Every transfer syntax that pydicom decodes here (PS3.5 A, 10), in our order of
# preference: pynetdicom accepts the first of this list that the SCU proposes in a
# presentation context. Not accepted, so that an SCU offering them converts to one of
# these: syntaxes we cannot decode (JPEG 2000 Part 2 multi-component, MPEG-2, MPEG-4, HEVC,
# SMPTE ST 2110, JPIP referenced, the retired JPEG processes).
TRANSFER_SYNTAXES = [
    uid.ExplicitVRLittleEndian,
    uid.ImplicitVRLittleEndian,
    uid.DeflatedExplicitVRLittleEndian,
    uid.ExplicitVRBigEndian,  # retired in PS3.5 but still sent by older modalities and PACS
    uid.JPEGBaseline8Bit,
    uid.JPEGExtended12Bit,
    uid.JPEGLossless,
    uid.JPEGLosslessSV1,
    uid.JPEGLSLossless,
    uid.JPEGLSNearLossless,
    uid.JPEG2000Lossless,
    uid.JPEG2000,
    uid.HTJ2KLossless,
    uid.HTJ2KLosslessRPCL,
    uid.HTJ2K,
    uid.RLELossless,
]


def freeze_startup_heap() -> None:
    """Exclude what a started process holds from Python's cyclic garbage collector.

    pynetdicom's accept loop calls ``gc.collect()`` every 60 polls (12 s at ours), to reclaim
    finished associations; a full collection walks every tracked object, and a started
    service holds ~230,000 of them (modules, models, the web app): ~170 ms of CPU each
    time, in every listener process, whatever the traffic, and stalling every association
    thread while it runs. Frozen objects are skipped by every collection; what is created
    afterwards (associations included) is collected as before, at a fraction of the cost.
    Call it once, when a long-running process has finished starting; garbage made
    before is collected first, so none is frozen for good.
    """
    gc.collect()
    gc.freeze()


def open_listen_socket(host: str, port: int, backlog: int = 128) -> socket.socket:
    """Bind and listen; non-blocking so that several processes can accept from it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.setblocking(False)
    return sock


class CardiogateServer(ThreadedAssociationServer):
    """pynetdicom's threaded server on a socket opened elsewhere, with admission control.

    With ``tls_context`` set, each connection's TLS handshake runs in the connection's thread
    (pynetdicom's own ``ssl_context`` would run it in the accept loop, unbounded);
    ``on_tls_failed`` hears of each one that fails or times out.
    """

    daemon_threads = True
    gate: AdmissionGate | None = None
    tls_context: ssl.SSLContext | None = None
    tls_handshake_timeout: float = 30.0
    on_tls_failed: Callable[[], None] | None = None

    def __init__(self, *args: Any, listen_socket: socket.socket, **kwargs: Any) -> None:
        self._listen_socket = listen_socket
        kwargs["request_handler"] = pynetdicom_door.GatedRequestHandler
        super().__init__(*args, **kwargs)

    def server_bind(self) -> None:
        if self.socket is not None:  # the one socketserver made; ours replaces it
            self.socket.close()
        self.socket = self._listen_socket
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        """Already listening."""

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        # Every listener process is woken for each connection; one already serving
        # associations waits a moment so that an idle process wins the accept. If none
        # does, the connection is still here (non-blocking accept raises otherwise).
        busy = len(self.active_associations)
        if busy:
            time.sleep(min(0.002 * busy, 0.02))
        client, address = super().get_request()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls_context is not None:
            client = tls.wrap_accepted(self.tls_context, client)
        return client, address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            failure = tls.handshake(request, self.tls_handshake_timeout)
            if failure is not None:
                peer = host_port(client_address[0], client_address[1])
                log.warning("TLS handshake from %s failed: %s", peer, failure)
                if self.on_tls_failed is not None:
                    self.on_tls_failed()
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)

    def server_close(self) -> None:
        # Never shutdown(): the listening socket is shared with other processes.
        if self.socket is not None:
            self.socket.close()


class Listener:
    """One process's Storage SCP (C-ECHO, C-STORE for every storage SOP class)."""

    def __init__(
        self,
        settings: Settings,
        spool: Spool,
        store: Store,
        sink: IngestSink,
        slots: AssociationSlots,
        listen_socket: socket.socket,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.slots = slots
        self._socket = listen_socket
        self._server: CardiogateServer | None = None
        self._thread: threading.Thread | None = None
        self.handler = StoreSCPHandler(spool, store, sink, settings.min_free_disk_bytes)
        self.gate = AdmissionGate(
            settings.allowed_calling_aets,
            slots,
            settings.min_free_disk_bytes,
            spool.free_bytes,
            called_ae_title=settings.ae_title if settings.require_called_ae_title else None,
        )
        self.tls_context: ssl.SSLContext | None = None
        if settings.dicom_tls_cert_file is not None and settings.dicom_tls_key_file is not None:
            self.tls_context = tls.server_context(
                settings.dicom_tls_cert_file,
                settings.dicom_tls_key_file,
                settings.dicom_tls_ca_file,
            )

    def _build_ae(self) -> AE:
        ae = AE(ae_title=self.settings.ae_title)
        ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
        ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
        ae.maximum_pdu_size = self.settings.maximum_pdu_size
        ae.network_timeout = self.settings.network_timeout_seconds
        ae.dimse_timeout = self.settings.dimse_timeout_seconds
        ae.acse_timeout = self.settings.acse_timeout_seconds
        # Limits are enforced across processes by the AdmissionGate, not per process.
        ae.maximum_associations = max(1024, self.settings.max_associations)
        ae.add_supported_context(
            Verification,
            [uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.ExplicitVRBigEndian],
        )
        for cx in AllStoragePresentationContexts:
            if cx.abstract_syntax is not None:  # every one of pynetdicom's names its class
                ae.add_supported_context(cx.abstract_syntax, TRANSFER_SYNTAXES)
        return ae

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def listening(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def active_associations(self) -> int:
        return 0 if self._server is None else len(self._server.active_associations)

    def start(self) -> None:
        ae = self._build_ae()
        handlers: list[Any] = [
            (evt.EVT_C_STORE, self.handler),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_CONN_CLOSE, self._on_close),
        ]
        server = ae.make_server(
            self._socket.getsockname(),
            evt_handlers=handlers,
            server_class=CardiogateServer,
            listen_socket=self._socket,
        )
        if not isinstance(server, CardiogateServer):
            raise CardiogateError("pynetdicom did not build the server class it was given")
        server.gate = self.gate
        server.tls_context = self.tls_context
        server.tls_handshake_timeout = self.settings.acse_timeout_seconds
        server.on_tls_failed = self._on_tls_failed
        pynetdicom_door.register_server(ae, server)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="dicom-accept"
        )
        self._thread.start()
        log.info(
            "DICOM listener %s accepting on %s:%d%s",
            self.settings.ae_title,
            *server.server_address[:2],
            self._tls_description(),
        )

    def stop_accepting(self) -> None:
        """Stop this process's accept loop and close its copy of the listening socket."""
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join()

    def drain(self, grace_seconds: float) -> None:
        """Wait up to ``grace_seconds`` for open associations, then abort what is left."""
        server = self._server
        if server is None:
            return
        deadline = time.monotonic() + grace_seconds
        while server.active_associations and time.monotonic() < deadline:
            time.sleep(0.05)
        for assoc in server.active_associations:
            log.warning("aborting an association still open after %.0f s", grace_seconds)
            assoc.abort()
        self._server = None

    def stop(self, grace_seconds: float) -> None:
        """Stop accepting, let in-flight associations finish (up to ``grace_seconds``)."""
        self.stop_accepting()
        self.drain(grace_seconds)

    def _tls_description(self) -> str:
        if self.tls_context is None:
            return ""
        if self.settings.dicom_tls_ca_file is None:
            return " (TLS)"
        return " (TLS, client certificates required)"

    # -- association events ----------------------------------------------------------------

    def _on_accepted(self, event: Any) -> None:
        log.info(
            "association accepted from %s (calling AE %r)",
            peer_address(event.assoc),
            event.assoc.requestor.ae_title,
        )
        self.sink.association("accepted")

    def _on_rejected(self, event: Any) -> None:
        self.sink.association(getattr(event.assoc, "cardiogate_outcome", "rejected_other"))

    def _on_tls_failed(self) -> None:
        self.sink.association("tls_failed")

    def _on_aborted(self, event: Any) -> None:
        self.sink.association("aborted")

    def _on_close(self, event: Any) -> None:
        pynetdicom_door.release(event.assoc)
        if getattr(event.assoc, "cardiogate_slot", False):
            event.assoc.cardiogate_slot = False
            self.slots.release()
