"""Messages an operator can act on: JSON logs with nothing raw between the lines, refused
associations logged with the peer's address, both AE titles and the reason, a wrong Called
AE Title refused by default, Error Comments cut between words, and a 401 that says where the
token is."""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cardiogate_phantoms import make_ct_series, write_series
from fastapi.testclient import TestClient
from pydicom.dataset import Dataset
from pynetdicom import AE, _config
from pynetdicom.sop_class import CTImageStorage

from cardiogate.api.app import create_api
from cardiogate.config import load_settings
from cardiogate.store import Store
from peers import RunningSCP, dcmtk, free_port, send, start_scp, start_serve, stop_serve
from tiny_model import write_model

CANNOT_UNDERSTAND = 0xC000
TOKEN = "a-configured-token-0123456789"


def _ct(seed: int, n_slices: int = 1) -> list[Dataset]:
    return make_ct_series(seed, n_slices=n_slices, rows=32, columns=32).datasets


def _associate(port: int, calling: str, called: str, source_port: int | None = None) -> Any:
    ae = AE(ae_title=calling)
    ae.add_requested_context(CTImageStorage)
    bind = ("127.0.0.1", source_port or 0)
    return ae.associate("127.0.0.1", port, ae_title=called, bind_address=bind)


def _rejection(assoc: Any) -> tuple[int, int, int]:
    assert assoc.is_rejected
    rj = assoc.acceptor.primitive
    return (rj.result, rj.result_source, rj.diagnostic)


# -- JSON logs ------------------------------------------------------------------------------


def _wait_for(server: Any, text: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while text not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_every_line_a_json_serve_writes_is_json(tmp_path: Path) -> None:
    write_model(tmp_path / "models" / "tiny")
    server = start_serve(
        tmp_path / "data",
        env={
            "CARDIOGATE_LOG_FORMAT": "json",
            "CARDIOGATE_MODELS_DIR": str(tmp_path / "models"),
            "CARDIOGATE_LISTENER_PROCESSES": "1",
            "CARDIOGATE_QUIET_SECONDS": "1",
            # the garbage connection below is dropped within a second or two
            "CARDIOGATE_ACSE_TIMEOUT_SECONDS": "1",
            "CARDIOGATE_NETWORK_TIMEOUT_SECONDS": "2",
        },
    )
    source_port = free_port()
    try:
        odd = _ct(61, n_slices=2)
        for ds in odd:
            ds.SpecificCharacterSet = "ISO_IR 999"  # pydicom warns when it decodes text
        assert send(server.dicom_port, odd) == [0, 0]
        wrong = _associate(server.dicom_port, "MODALITY", "WRONG", source_port)
        assert _rejection(wrong) == (0x01, 0x01, 0x07)
        with socket.create_connection(("127.0.0.1", server.dicom_port)) as noise:
            noise.sendall(b"\x42" * 64)  # not a PDU: pynetdicom's DUL logs it
            noise.settimeout(10)
            while noise.recv(1024):  # an A-ABORT, then the service closes the connection
                pass
        refused = httpx.get(server.base_url + "/api/v1/jobs", timeout=5)
        assert refused.status_code == 401
        _wait_for(server, "py.warnings")
        _wait_for(server, "pynetdicom.dul")
    finally:
        assert stop_serve(server) == 0

    entries = []
    for line in server.log().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a line of the JSON log is not JSON: {line!r}")
    loggers = {e["logger"] for e in entries}
    assert {"py.warnings", "pynetdicom.dul", "uvicorn.error", "cardiogate.app"} <= loggers
    warned = [e for e in entries if e["logger"] == "py.warnings"]
    assert any("Unknown encoding 'ISO_IR 999'" in e["message"] for e in warned)
    assert all(e["warning_origin"].startswith("pydicom/") for e in warned)
    (rejected,) = [e for e in entries if e.get("outcome") == "rejected_called_ae"]
    assert rejected["peer"] == f"127.0.0.1:{source_port}"
    assert (rejected["calling_ae_title"], rejected["called_ae_title"]) == ("MODALITY", "WRONG")
    assert rejected["reject_reason"] == "rejected-permanent, called-AE-title-not-recognized"

    # the 401 names the header and the file the generated token was saved in, not the token
    message = refused.json()["error"]["message"]
    token_file = (tmp_path / "data" / "api-token").resolve()
    assert "Authorization: Bearer <token>" in message
    assert str(token_file) in message
    assert token_file.read_text(encoding="ascii").strip() not in refused.text


# -- association refusals -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "calling", "called", "reason", "names", "hint"),
    [
        (
            {},
            "MODALITY",
            "WRONG",
            (0x01, 0x01, 0x07),
            "rejected-permanent, called-AE-title-not-recognized",
            "configure the peer to call CARDIOGATE",
        ),
        (
            {"allowed_calling_aets": ["PACS"]},
            "STRANGER",
            "CARDIOGATE",
            (0x01, 0x01, 0x03),
            "rejected-permanent, calling-AE-title-not-recognized",
            "CARDIOGATE_ALLOWED_CALLING_AETS",
        ),
        (
            {"min_free_disk_mb": 10**12},
            "PACS",
            "CARDIOGATE",
            (0x02, 0x03, 0x01),
            "rejected-transient, temporary-congestion",
            "CARDIOGATE_MIN_FREE_DISK_MB",
        ),
    ],
    ids=["called-ae", "calling-ae", "disk"],
)
def test_a_refusal_is_logged_with_peer_ae_titles_and_reason(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    settings: dict[str, Any],
    calling: str,
    called: str,
    reason: tuple[int, int, int],
    names: str,
    hint: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="cardiogate.dicom.admission")
    scp = start_scp(tmp_path, **settings)
    source_port = free_port()
    try:
        assert _rejection(_associate(scp.port, calling, called, source_port)) == reason
    finally:
        scp.listener.stop(5)
        scp.store.dispose()
    (record,) = [r for r in caplog.records if r.name == "cardiogate.dicom.admission"]
    message = record.getMessage()
    assert message.startswith(f"association from 127.0.0.1:{source_port} refused ")
    assert f"calling AE '{calling}', called AE '{called}'" in message
    assert names in message
    assert hint in message


def test_the_association_limit_refusal_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cardiogate.dicom.admission")
    scp = start_scp(tmp_path, max_associations=1)
    try:
        held = _associate(scp.port, "PACS", "CARDIOGATE")
        assert held.is_established
        assert _rejection(_associate(scp.port, "PACS", "CARDIOGATE")) == (0x02, 0x03, 0x02)
        held.release()
    finally:
        scp.listener.stop(5)
        scp.store.dispose()
    (record,) = [r for r in caplog.records if r.name == "cardiogate.dicom.admission"]
    message = record.getMessage()
    assert "rejected-transient, local-limit-exceeded" in message
    assert "all 1 association slots are in use (CARDIOGATE_MAX_ASSOCIATIONS)" in message


def test_our_called_ae_title_is_accepted_and_the_check_can_be_turned_off(
    tmp_path: Path,
) -> None:
    scp = start_scp(tmp_path / "strict")
    try:
        assert send(scp.port, _ct(62)) == [0]  # called CARDIOGATE
        assert _associate(scp.port, "PACS", "ANY-SCP").is_rejected  # pynetdicom's default
    finally:
        scp.listener.stop(5)
        scp.store.dispose()
    lax = start_scp(tmp_path / "lax", require_called_ae_title=False)
    try:
        assoc = _associate(lax.port, "PACS", "ANY-SCP")
        assert assoc.is_established
        assert int(assoc.send_c_store(_ct(63)[0]).Status) == 0
        assoc.release()
    finally:
        lax.listener.stop(5)
        lax.store.dispose()


def _echoscu(port: int, called: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [dcmtk("echoscu"), "-aet", "MODALITY", "-aec", called, "-to", "10", "-ta", "10"]
        + ["127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_dcmtk_echoscu_to_a_wrong_called_ae_is_told_why(scp: RunningSCP) -> None:
    refused = _echoscu(scp.port, "WRONG")
    assert refused.returncode != 0
    assert "Rejected Permanent" in refused.stderr
    assert "Called AE Title Not Recognized" in refused.stderr
    assert _echoscu(scp.port, "CARDIOGATE").returncode == 0


# -- Error Comment --------------------------------------------------------------------------


def test_error_comment_is_cut_between_words(
    scp: RunningSCP, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Send the file's bytes as they are, its last element cut short.
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    series = make_ct_series(64, n_slices=1, rows=32, columns=32)
    del series.datasets[0].PixelData
    [path] = write_series(series, tmp_path / "in")
    path.write_bytes(path.read_bytes()[:-3])
    assoc = _associate(scp.port, "PACS", "CARDIOGATE")
    rsp = assoc.send_c_store(path)
    assoc.release()
    assert rsp.Status == CANNOT_UNDERSTAND
    # in full: "... shorter than its header says", 65 characters; [:64] sent "header sa"
    assert rsp.ErrorComment == "data set is truncated: an element is shorter than its header"


# -- 401 ------------------------------------------------------------------------------------


class _Healthy:
    def readiness(self) -> tuple[dict[str, bool], dict[str, str | int | float]]:
        return {"store_reachable": True}, {}


def test_a_401_names_the_header_and_the_setting_never_the_token(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, api_token=TOKEN, metrics_auth=True)
    store = Store(f"sqlite:///{tmp_path / 'cardiogate.db'}")
    store.create_schema()
    try:
        api = TestClient(create_api(store, _Healthy(), TOKEN, settings=settings, metrics_auth=True))
        wrong = {"Authorization": "Bearer " + "x" * len(TOKEN)}
        for answer in (
            api.get("/api/v1/jobs"),
            api.get("/api/v1/jobs", headers=wrong),
            api.get("/metrics"),
        ):
            assert answer.status_code == 401
            assert answer.headers["www-authenticate"] == "Bearer"
            message = answer.json()["error"]["message"]
            assert message.startswith("missing or wrong bearer token: ")
            assert "'Authorization: Bearer <token>'" in message
            assert "the api_token setting (CARDIOGATE_API_TOKEN)" in message
            assert TOKEN not in answer.text
            assert "api-token" not in message  # no file is involved
        assert api.get("/api/v1/jobs", headers={"Authorization": f"Bearer {TOKEN}"}).is_success
    finally:
        store.dispose()
