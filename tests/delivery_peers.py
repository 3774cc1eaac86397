"""What the delivery tests share: the two studies (a calcium CT and a stenosis cine), the
fixed-rule models, ``cardiogate serve`` pointed at a destination with short retry delays,
and waiting on job states through the API."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cardiogate_phantoms import make_ct_series, make_xa_cine
from pydicom.dataset import Dataset

from peers import ServeProcess, start_serve
from tiny_model import write_dark_spot_model, write_threshold_model


def calcium_ct(seed: int = 51) -> list[Dataset]:
    return make_ct_series(seed, n_slices=12, rows=64, columns=64, pixel_spacing_mm=6.0).datasets


def stenosis_cine(seed: int = 1) -> list[Dataset]:
    return make_xa_cine(
        seed,
        frames=8,
        rows=256,
        columns=256,
        stenoses=[{"vessel": "LAD", "percent": 75}],
        artery="LCA",
    ).datasets


def write_models(folder: Path) -> Path:
    write_threshold_model(folder / "calcium")
    write_dark_spot_model(folder / "stenosis")
    return folder


def serve_delivering(tmp_path: Path, ae_title: str, port: int, **extra_env: str) -> ServeProcess:
    """``cardiogate serve`` with both fixed-rule models and one destination; retries after
    0.2 s, at most 1 s apart."""
    env = {
        "CARDIOGATE_MODELS_DIR": str(tmp_path / "models"),
        "CARDIOGATE_QUIET_SECONDS": "1",
        "CARDIOGATE_LISTENER_PROCESSES": "1",
        "CARDIOGATE_DESTINATIONS": json.dumps(
            [{"ae_title": ae_title, "host": "127.0.0.1", "port": port}]
        ),
        "CARDIOGATE_DELIVERY_INITIAL_DELAY_SECONDS": "0.2",
        "CARDIOGATE_DELIVERY_MAX_DELAY_SECONDS": "1",
        "CARDIOGATE_DELIVERY_POLL_SECONDS": "0.2",
        "CARDIOGATE_ACSE_TIMEOUT_SECONDS": "5",
        **extra_env,
    }
    if not (tmp_path / "models").exists():
        write_models(tmp_path / "models")
    return start_serve(tmp_path / "data", env=env)


def wait_for_job(
    server: ServeProcess,
    SeriesInstanceUID: str,
    states: tuple[str, ...],
    timeout: float = 45,
    finished_after: str | None = None,
) -> dict[str, Any]:
    """The series' job once it is in one of ``states`` (and, if given, finished after the
    ``finished_after`` timestamp, to wait for a re-run)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        r = httpx.get(
            f"{server.base_url}/api/v1/series/{SeriesInstanceUID}", headers=server.auth, timeout=5
        )
        if r.status_code == 401:
            pytest.fail("the API refused the service's own token")
        if r.status_code == 200:
            last = r.json()["job"]
            if (
                last
                and last["state"] in states
                and (finished_after is None or (last["finished_at"] or "") > finished_after)
            ):
                return dict(last)
        time.sleep(0.2)
    pytest.fail(f"job of {SeriesInstanceUID} not in {states} (last {last}):\n{server.log()}")


def outbox_rows(server: ServeProcess) -> list[dict[str, Any]]:
    """The outbox table, read straight from the service's SQLite file."""
    db = sqlite3.connect(f"file:{server.data_dir / 'cardiogate.db'}?mode=ro", uri=True)
    try:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM outbox ORDER BY id")]
    finally:
        db.close()
