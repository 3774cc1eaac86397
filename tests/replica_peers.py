"""What the replica tests share: two ``cardiogate serve`` processes on one PostgreSQL
database, a Storage SCP that counts what it receives, a calcium model that is slow on
purpose (so a kill lands mid-job), and the database read straight through SQLAlchemy."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from pynetdicom import AE, AllStoragePresentationContexts, evt
from sqlalchemy import create_engine, text

from cardiogate.inference.card import file_sha256
from peers import ServeProcess, start_serve
from tiny_model import write_threshold_model


@dataclass
class CountingSCP:
    """A Storage SCP on loopback that accepts everything and counts each SOP instance."""

    port: int
    received: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def counting_scp(port: int) -> Iterator[CountingSCP]:
    scp = CountingSCP(port)

    def on_store(event: Any) -> int:
        with scp.lock:
            scp.received[str(event.request.AffectedSOPInstanceUID)] += 1
        return 0x0000

    ae = AE(ae_title="PACS")
    ae.supported_contexts = AllStoragePresentationContexts
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    try:
        yield scp
    finally:
        server.shutdown()


def write_slow_model(folder: Path, work: int = 48) -> Path:
    """The threshold-rule calcium model (its outputs unchanged) plus ``work`` channels of
    9x9 convolutions whose result is multiplied by zero: real, input-dependent compute that
    makes each slice take a while, so a job is still running when the test kills it."""
    write_threshold_model(folder)
    model = onnx.load(folder / "model.onnx")
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.normal(0, 0.01, (work, 3, 9, 9)).astype("f4"), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.01, (work, work, 9, 9)).astype("f4"), "w2"),
        numpy_helper.from_array(np.zeros((), "f4"), "nothing"),
    ]
    logits = next(n for n in model.graph.node if n.output[0] == "logits")
    logits.output[0] = "rule"
    model.graph.initializer.extend(weights)
    model.graph.node.extend(
        [
            helper.make_node("Conv", ["image", "w1"], ["slow_1"], pads=[4, 4, 4, 4]),
            helper.make_node("Conv", ["slow_1", "w2"], ["slow_2"], pads=[4, 4, 4, 4]),
            helper.make_node("ReduceMean", ["slow_2"], ["slow_m"], axes=[1, 2, 3], keepdims=1),
            helper.make_node("Mul", ["slow_m", "nothing"], ["slow_0"]),
            helper.make_node("Add", ["rule", "slow_0"], ["logits"]),
        ]
    )
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", 17))
    onnx.checker.check_model(model)
    onnx.save(model, folder / "model.onnx")
    card = json.loads((folder / "card.json").read_text())
    card["sha256"] = file_sha256(folder / "model.onnx")
    (folder / "card.json").write_text(json.dumps(card))
    return folder


def serve_replica(
    base: Path,
    replica_id: str,
    database_url: str,
    pacs_port: int,
    data_dir: Path | None = None,
    **extra_env: str,
) -> ServeProcess:
    """``cardiogate serve`` as replica ``replica_id`` of ``database_url``, with the models
    in ``base/models``, its data in ``data_dir`` (default ``base/<replica_id>``) and the
    PACS as destination; jobs are leased for 3 s."""
    env = {
        "CARDIOGATE_DATABASE_URL": database_url,
        "CARDIOGATE_REPLICA_ID": replica_id,
        "CARDIOGATE_MODELS_DIR": str(base / "models"),
        # long enough that a loaded machine does not complete a series mid-send (a late
        # instance would re-open it and legitimately re-queue its job)
        "CARDIOGATE_QUIET_SECONDS": "3",
        "CARDIOGATE_ASSEMBLER_POLL_SECONDS": "0.3",
        "CARDIOGATE_LISTENER_PROCESSES": "1",
        "CARDIOGATE_JOB_LEASE_SECONDS": "3",
        "CARDIOGATE_DESTINATIONS": json.dumps(
            [{"ae_title": "PACS", "host": "127.0.0.1", "port": pacs_port}]
        ),
        "CARDIOGATE_DELIVERY_POLL_SECONDS": "0.2",
        **extra_env,
    }
    return start_serve(data_dir or base / replica_id, env=env)


class Database:
    """The replicas' PostgreSQL database, read as the tests need it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(sql), params)]

    def reopened(self, SeriesInstanceUID: str) -> int:
        """How often the series was re-opened by a late instance."""
        (row,) = self.rows(
            "SELECT reopened_count FROM series WHERE series_instance_uid = :s", s=SeriesInstanceUID
        )
        return int(row["reopened_count"])

    def job(self, SeriesInstanceUID: str) -> dict[str, Any] | None:
        found = self.rows("SELECT * FROM jobs WHERE series_instance_uid = :s", s=SeriesInstanceUID)
        return found[0] if found else None

    def wait_job(
        self, SeriesInstanceUID: str, states: tuple[str, ...], timeout: float = 120
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        job = None
        while time.monotonic() < deadline:
            job = self.job(SeriesInstanceUID)
            if job is not None and job["state"] in states:
                return job
            time.sleep(0.1)
        raise AssertionError(f"job of {SeriesInstanceUID} not in {states}: {job}")

    def dispose(self) -> None:
        self.engine.dispose()
