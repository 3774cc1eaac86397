"""Composition root: builds every part from Settings, starts them and stops them in order.

Start: spool and schema, the listening socket, extra listener processes, the in-process
listener, the series assembler, the job worker, the delivery sender, then HTTP. Stop
(SIGTERM): stop accepting associations, let in-flight C-STOREs finish, stop the assembler,
the worker (jobs in progress finish), the sender (the batch in progress finishes) and HTTP,
close the database.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

import uvicorn

from cardiogate.api import create_api
from cardiogate.api.https import server_config
from cardiogate.api.token_file import resolve_api_token
from cardiogate.config import Settings, check_replica_id
from cardiogate.dicom.admission import AssociationSlots
from cardiogate.dicom.listener import Listener, open_listen_socket
from cardiogate.dicom.outbox_files import OutboxFiles
from cardiogate.dicom.processes import ListenerPool
from cardiogate.dicom.recovery import index_orphans
from cardiogate.dicom.sender import Sender
from cardiogate.dicom.spool import Spool, fsync_dir
from cardiogate.dicom.tls import server_context
from cardiogate.errors import CardiogateError, ConfigurationError
from cardiogate.inference import InferenceEngine
from cardiogate.inference.engine import LoadedModel
from cardiogate.logs import quiet_pydicom
from cardiogate.metrics import (
    ACTIVE_ASSOCIATIONS,
    JOBS_BY_STATE,
    READY,
    SPOOL_FREE_BYTES,
    PrometheusIngestSink,
    drain_forever,
)
from cardiogate.pipeline.assembler import SeriesAssembler
from cardiogate.pipeline.worker import JobWorker
from cardiogate.store import Replica, Store
from cardiogate.store.jobs import JobQueue
from cardiogate.tasks import load_tasks

log = logging.getLogger(__name__)


REPLICA_ID_FILE = "replica-id"


def resolve_replica_id(settings: Settings) -> Settings:
    """The settings with this replica's id: ``CARDIOGATE_REPLICA_ID`` when set; else, for a
    data directory of its own, the id kept in it (the host name when it was first used), so
    the replica stays the owner of its spool when a container is recreated under another
    host name; for a shared data directory, the host name."""
    if settings.replica_id is not None:
        return settings
    replica_id = socket.gethostname()[:64]
    if not settings.spool_shared:
        kept = settings.data_dir / REPLICA_ID_FILE
        try:
            if kept.is_file():
                replica_id = kept.read_text().strip()
            else:  # whole or absent after a crash: written aside, fsynced, renamed
                settings.data_dir.mkdir(parents=True, exist_ok=True)
                aside = kept.with_suffix(".tmp")
                with aside.open("w") as f:
                    f.write(replica_id + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(aside, kept)
                fsync_dir(settings.data_dir)
        except OSError as e:
            raise ConfigurationError(f"cannot keep the replica id in {kept}: {e.strerror}") from e
    try:
        check_replica_id(replica_id)
    except ValueError as e:
        raise ConfigurationError(f"{e} (found {replica_id!r}): set CARDIOGATE_REPLICA_ID") from e
    return settings.model_copy(update={"replica_id": replica_id})


def _listen(host: str, port: int, setting: str) -> socket.socket:
    try:
        return open_listen_socket(host, port)
    except OSError as e:
        raise ConfigurationError(f"{setting}: cannot listen on {host}:{port}: {e.strerror}") from e


class Application:
    """The whole service in one process (plus optional extra listener processes)."""

    def __init__(self, settings: Settings) -> None:
        settings = resolve_replica_id(settings)
        self.settings = settings
        self.spool = Spool(settings.spool_dir, settings.tmp_subdir)
        replica = Replica.named(settings.replica_id, settings.spool_shared)
        self.store = Store(settings.effective_database_url, replica)
        self.slots = AssociationSlots(settings.max_associations)
        self.sink = PrometheusIngestSink()
        self.assembler = SeriesAssembler(
            self.store, settings.quiet_seconds, settings.assembler_poll_seconds
        )
        self._stop_metrics = threading.Event()
        self._threads: list[threading.Thread] = []
        self.engine: InferenceEngine | None = None
        self.worker: JobWorker | None = None
        self.outbox_files = OutboxFiles(settings.outbox_dir, settings.tmp_subdir)
        self.sender = Sender(settings, self.store, self.outbox_files)
        self.listener: Listener | None = None
        self.pool: ListenerPool | None = None
        self._http: uvicorn.Server | None = None
        self._dicom_socket: socket.socket | None = None
        self._http_socket: socket.socket | None = None

    # -- readiness (HealthProbe) -------------------------------------------------------------

    def readiness(self) -> tuple[dict[str, bool], dict[str, str | int | float]]:
        """Every part's check, and details for operators: a failed ``models_loaded`` says
        which models directory held no model (``models_loaded_reason``)."""
        models = self.loaded_models()
        checks = {
            "models_loaded": bool(models),
            "dicom_listening": self.listener is not None and self.listener.listening,
            "listener_processes": self.pool is None or self.pool.alive(),
            "store_reachable": self.store.ping(),
            "series_assembler": self.assembler.running,
            "job_worker": self.worker is not None and self.worker.running,
            "delivery_sender": self.sender.running,
        }
        details: dict[str, str | int | float] = {
            "ae_title": self.settings.ae_title,
            "dicom_port": self.dicom_port,
            "listener_processes": self.settings.listener_processes,
            "active_associations": self.slots.active,
        }
        for task, model in models.items():
            details[f"model_{task}"] = f"{model.card.name} {model.card.version} on {model.provider}"
        if not models:
            details["models_loaded_reason"] = f"no model loaded from {self.settings.models_dir}"
        return checks, details

    def _ready(self) -> float:
        """``cardiogate_ready``: 1.0 when /readyz would answer 200."""
        checks, _ = self.readiness()
        return 1.0 if all(checks.values()) else 0.0

    def loaded_models(self) -> Mapping[str, LoadedModel]:
        """The engine's models by task (none before start-up loads them)."""
        return {} if self.engine is None else self.engine.models

    def candidate_models(self) -> Mapping[str, LoadedModel]:
        """The candidates running in shadow beside the serving models, by task."""
        return {} if self.engine is None else self.engine.candidates

    @property
    def dicom_port(self) -> int:
        return 0 if self._dicom_socket is None else int(self._dicom_socket.getsockname()[1])

    @property
    def http_port(self) -> int:
        return 0 if self._http_socket is None else int(self._http_socket.getsockname()[1])

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        quiet_pydicom()
        s.data_dir.mkdir(parents=True, exist_ok=True)
        api_token = resolve_api_token(s)  # before any port opens: a bad token file stops us
        if s.dicom_tls_cert_file is not None and s.dicom_tls_key_file is not None:
            # and so does a bad certificate, here rather than in each listener process
            server_context(s.dicom_tls_cert_file, s.dicom_tls_key_file, s.dicom_tls_ca_file)
        tasks = load_tasks(s)  # before any port opens: bad task settings stop us
        self.spool.prepare()
        self.store.create_schema()
        index_orphans(self.spool, self.store)
        self.engine = InferenceEngine.from_directory(
            s.models_dir,
            s.providers,
            cache_dir=s.data_dir / "trt-cache",
            candidates_dir=s.candidates_path,
        )
        for task in sorted(set(self.engine.models) - set(tasks)):
            log.warning(
                "a model in %s is for task %r, which no installed task provides: not used",
                s.models_dir,
                task,
            )
        ACTIVE_ASSOCIATIONS.set_function(lambda: self.slots.active)
        SPOOL_FREE_BYTES.set_function(self.spool.free_bytes)
        READY.set_function(self._ready)
        JOBS_BY_STATE.watch(JobQueue(self.store).counts)

        self._dicom_socket = _listen(s.dicom_host, s.dicom_port, "CARDIOGATE_DICOM_PORT")
        self._http_socket = _listen(s.http_host, s.http_port, "CARDIOGATE_HTTP_PORT")

        extra = s.listener_processes - 1
        if extra:
            self.pool = ListenerPool(s, self._dicom_socket, self.slots.shared)
            self.pool.start(extra)
            self.pool.wait_listening(timeout=60)
            self._spawn(drain_forever, self.pool.metrics_queue, self.sink, self._stop_metrics)
        self.listener = Listener(
            s, self.spool, self.store, self.sink, self.slots, self._dicom_socket
        )
        self.listener.start()
        self.worker = JobWorker(
            s,
            self.store,
            self.spool,
            self.engine,
            tasks=tasks,
            outbox_files=self.outbox_files,
            on_reported=self.sender.wake,
        )
        self.assembler.on_complete = self.worker.route_completed
        self.worker.start()
        self.assembler.start()
        self.sender.start()

        api = create_api(
            self.store,
            self,
            api_token,
            settings=s,
            models=self,
            metrics_auth=s.metrics_auth,
            tasks=tasks,
        )
        self._http = uvicorn.Server(server_config(api, s))
        self._spawn(self._http.run, [self._http_socket])
        deadline = time.monotonic() + 10
        while not self._http.started:
            if time.monotonic() > deadline:
                raise CardiogateError("the HTTP server did not start within 10 s")
            time.sleep(0.02)
        log.info(
            "cardiogate ready: DICOM%s %s on %s:%d, HTTP%s on %s:%d, %d listener process(es)",
            " (TLS)" if s.dicom_tls else "",
            s.ae_title,
            s.dicom_host,
            self.dicom_port,
            "S" if s.http_tls else "",
            s.http_host,
            self.http_port,
            s.listener_processes,
        )

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Graceful stop: no new associations, in-flight C-STOREs finish, then everything."""
        grace = self.settings.shutdown_grace_seconds
        READY.set_function(lambda: 0.0)
        log.info("stopping: no new associations; waiting up to %.0f s for open ones", grace)
        if self.pool is not None:
            self.pool.request_stop()
        if self._dicom_socket is not None:
            # Every process shares this socket: shutting it down (before any process closes
            # its copy) stops the kernel completing new connections at once, in all of them.
            try:
                self._dicom_socket.shutdown(socket.SHUT_RDWR)
                log.info("DICOM port closed to new associations")
            except OSError as e:
                log.warning("could not shut the DICOM port down: %s", e.strerror)
        if self.listener is not None:
            self.listener.stop_accepting()
            self.listener.drain(grace)
        if self.pool is not None:
            self.pool.join(grace + 5)
        self.assembler.stop()
        if self.worker is not None:
            self.worker.stop()
        self.sender.stop()
        if self._http is not None:
            self._http.should_exit = True
        self._stop_metrics.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._dicom_socket is not None:
            self._dicom_socket.close()
        JOBS_BY_STATE.watch(None)
        self.store.dispose()
        log.info("stopped")
