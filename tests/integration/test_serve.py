"""``cardiogate serve`` as an operator runs it: echo, readiness, graceful SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from cardiogate_phantoms import make_ct_series
from pynetdicom import AE

from peers import ServeProcess, dcmtk, start_serve, stop_serve
from tiny_model import write_model


def test_echoscu_and_readyz(serve: ServeProcess) -> None:
    echo = subprocess.run(
        [dcmtk("echoscu"), "-aec", "CARDIOGATE", "127.0.0.1", str(serve.dicom_port)],
        env={**os.environ, "TCP_NODELAY": "1"},
        capture_output=True,
        timeout=30,
    )
    assert echo.returncode == 0, echo.stderr
    ready = httpx.get(serve.base_url + "/readyz", timeout=5)
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True
    assert body["checks"]["dicom_listening"]
    assert body["checks"]["store_reachable"]
    assert httpx.get(serve.base_url + "/healthz", timeout=5).json() == {"status": "alive"}


def test_sigterm_lets_the_open_association_finish_then_exits_0(serve: ServeProcess) -> None:
    ct = make_ct_series(31, n_slices=60, rows=256, columns=256)
    statuses: list[int] = []
    started = threading.Event()

    def push() -> None:
        ae = AE(ae_title="PACS")
        ae.add_requested_context(
            ct.datasets[0].SOPClassUID, ct.datasets[0].file_meta.TransferSyntaxUID
        )
        assoc = ae.associate("127.0.0.1", serve.dicom_port, ae_title="CARDIOGATE")
        assert assoc.is_established
        for i, ds in enumerate(ct.datasets):
            statuses.append(int(assoc.send_c_store(ds).get("Status", -1)))
            if i == 5:
                started.set()
            time.sleep(0.01)
        assoc.release()

    sender = threading.Thread(target=push)
    sender.start()
    assert started.wait(30)
    serve.proc.terminate()
    time.sleep(0.5)
    late = AE(ae_title="LATE")
    late.add_requested_context(ct.datasets[0].SOPClassUID)
    refused = late.associate("127.0.0.1", serve.dicom_port, ae_title="CARDIOGATE")
    assert not refused.is_established, serve.log()  # no new associations once stopping
    sender.join(60)
    assert statuses == [0] * len(ct.datasets)  # every in-flight C-STORE completed
    assert stop_serve(serve) == 0
    assert "stopped" in serve.log()


def test_models_are_loaded_before_ready_and_a_changed_one_stops_start_up(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_model(models / "calcium", task="calcium")
    server = start_serve(tmp_path / "data", env={"CARDIOGATE_MODELS_DIR": str(models)})
    try:
        details = httpx.get(server.base_url + "/readyz", timeout=5).json()["details"]
        assert details["model_calcium"] == "tiny-calcium 0.0.1 on CPUExecutionProvider"
        assert "model tiny-calcium 0.0.1 (calcium) loaded on CPUExecutionProvider" in server.log()
    finally:
        assert stop_serve(server) == 0

    with (models / "calcium" / "model.onnx").open("ab") as f:
        f.write(b"tampered")
    result = subprocess.run(
        [sys.executable, "-m", "cardiogate", "serve"],
        env={
            **os.environ,
            "CARDIOGATE_MODELS_DIR": str(models),
            "CARDIOGATE_DATA_DIR": str(tmp_path / "data2"),
            "CARDIOGATE_DICOM_PORT": "0",
            "CARDIOGATE_HTTP_PORT": "0",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "does not match its card" in result.stderr
    assert str(models / "calcium") in result.stderr
