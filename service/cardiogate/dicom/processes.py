"""Extra listener processes: pynetdicom is CPU-bound under the GIL, so several processes
accept from the one listening socket the main process opened (``Settings.listener_processes``).

Each reports metrics to the main process through a queue, shares the association counter,
and stops gracefully when the main process asks or dies.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from typing import Any

from cardiogate.config import Settings
from cardiogate.errors import CardiogateError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _stop_when_parent_dies() -> None:
    """Ask Linux to send SIGTERM to this process when its parent dies (kill -9 included)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        log.debug("prctl(PR_SET_PDEATHSIG) unavailable; relying on parent polling")


def listener_process_main(
    settings_json: str,
    listen_socket: socket.socket,
    slots_value: Any,
    metrics_queue: Any,
    stop_event: Any,
    listening_event: Any,
    parent_pid: int,
) -> None:
    """Entry point of an extra listener process (spawned, so it imports afresh)."""
    _stop_when_parent_dies()
    from cardiogate.dicom.admission import AssociationSlots
    from cardiogate.dicom.listener import Listener, freeze_startup_heap
    from cardiogate.dicom.spool import Spool
    from cardiogate.logs import setup_logging
    from cardiogate.metrics import QueueIngestSink
    from cardiogate.store import Replica, Store

    settings = Settings.model_validate_json(settings_json)
    setup_logging(settings.log_level, settings.log_format)
    local_stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides on Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: local_stop.set())

    replica = Replica.named(settings.replica_id, settings.spool_shared)
    store = Store(settings.effective_database_url, replica)
    listener = Listener(
        settings,
        Spool(settings.spool_dir, settings.tmp_subdir),
        store,
        QueueIngestSink(metrics_queue),
        AssociationSlots(settings.max_associations, slots_value),
        listen_socket,
    )
    listener.start()
    freeze_startup_heap()
    listening_event.set()
    while not local_stop.is_set() and not stop_event.wait(0.5):
        if os.getppid() != parent_pid:
            break
    listener.stop(settings.shutdown_grace_seconds)
    store.dispose()


class ListenerPool:
    """Starts and stops the extra listener processes."""

    def __init__(self, settings: Settings, listen_socket: socket.socket, slots_value: Any) -> None:
        self.settings = settings
        self._socket = listen_socket
        self._slots_value = slots_value
        self._ctx = multiprocessing.get_context("spawn")
        self.metrics_queue: Any = self._ctx.Queue(maxsize=100_000)
        self._stop = self._ctx.Event()
        self._procs: list[Any] = []
        self._listening: list[Any] = []

    def start(self, count: int) -> None:
        for i in range(count):
            listening = self._ctx.Event()
            proc = self._ctx.Process(
                target=listener_process_main,
                args=(
                    self.settings.model_dump_json(),
                    self._socket,
                    self._slots_value,
                    self.metrics_queue,
                    self._stop,
                    listening,
                    os.getpid(),
                ),
                name=f"cardiogate-listener-{i + 1}",
            )
            proc.start()
            self._procs.append(proc)
            self._listening.append(listening)
        if count:
            log.info("started %d extra listener process(es)", count)

    def wait_listening(self, timeout: float) -> None:
        """Block until every listener process accepts associations.

        Raises
        ------
        CardiogateError
            When one exits or does not come up within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        for proc, listening in zip(self._procs, self._listening, strict=True):
            while not listening.wait(0.1):
                if not proc.is_alive():
                    raise CardiogateError(f"listener process {proc.name} exited while starting")
                if time.monotonic() > deadline:
                    raise CardiogateError(f"listener process {proc.name} did not start in time")

    def alive(self) -> bool:
        return all(p.is_alive() for p in self._procs)

    def request_stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        for proc in self._procs:
            proc.join(timeout)
            if proc.is_alive():
                log.warning("listener process %s did not stop in time; killing it", proc.name)
                proc.kill()
                proc.join()
        self._procs.clear()
