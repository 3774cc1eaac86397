"""Delivery to a destination that speaks DICOM over TLS: a real pynetdicom Storage SCP with a
certificate made by openssl, and dcmtk's ``storescp +tls`` requiring our client certificate.
With the right CA the objects arrive; with another CA the handshake fails, nothing is sent
and the rows wait for a retry."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt

from delivery_peers import calcium_ct, outbox_rows, serve_delivering, wait_for_job
from peers import ServeProcess, dcmtk, free_port, send, stop_serve
from pki import CertificateAuthority, self_signed


@dataclass
class TlsPacs:
    port: int
    received: list[Dataset] = field(default_factory=list)
    server: Any = None


@pytest.fixture
def tls_pacs(tmp_path: Path) -> Iterator[tuple[TlsPacs, Path]]:
    cert, key = self_signed(tmp_path / "pki", "pacs")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key))
    pacs = TlsPacs(free_port())

    def on_store(event: Any) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        pacs.received.append(ds)
        return 0x0000

    ae = AE(ae_title="TLSPACS")
    ae.supported_contexts = AllStoragePresentationContexts
    pacs.server = ae.start_server(
        ("127.0.0.1", pacs.port),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
        ssl_context=context,
    )
    yield pacs, cert
    pacs.server.shutdown()


def _destination(pacs: TlsPacs, ca: Path) -> dict[str, str]:
    destination = {
        "ae_title": "TLSPACS",
        "host": "127.0.0.1",
        "port": pacs.port,
        "tls": True,
        "tls_ca_file": str(ca),
    }
    return {"CARDIOGATE_DESTINATIONS": json.dumps([destination])}


def _send_a_ct_until_delivered(server: ServeProcess) -> list[Dataset]:
    """Send a calcium CT to ``server``; its job must end delivered. Returns the CT."""
    ct = calcium_ct()
    assert send(server.dicom_port, ct) == [0] * len(ct)
    job = wait_for_job(server, ct[0].SeriesInstanceUID, ("delivered", "failed"))
    assert job["state"] == "delivered", job["reason"]
    return ct


def test_objects_reach_a_tls_destination(tmp_path: Path, tls_pacs: tuple[TlsPacs, Path]) -> None:
    pacs, ca = tls_pacs
    server = serve_delivering(tmp_path, "TLSPACS", pacs.port, **_destination(pacs, ca))
    try:
        ct = _send_a_ct_until_delivered(server)
    finally:
        assert stop_serve(server) == 0
    assert sorted(ds.Modality for ds in pacs.received) == ["OT", "OT", "SEG", "SR"]
    assert {ds.StudyInstanceUID for ds in pacs.received} == {ct[0].StudyInstanceUID}


def test_a_peer_with_an_untrusted_certificate_gets_nothing(
    tmp_path: Path, tls_pacs: tuple[TlsPacs, Path]
) -> None:
    pacs, _ = tls_pacs
    other_ca, _ = self_signed(tmp_path / "other", "someone-else")
    server = serve_delivering(tmp_path, "TLSPACS", pacs.port, **_destination(pacs, other_ca))
    try:
        ct = calcium_ct()
        assert send(server.dicom_port, ct) == [0] * len(ct)
        job = wait_for_job(server, ct[0].SeriesInstanceUID, ("reported", "failed"))
        assert job["state"] == "reported"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = outbox_rows(server)
            if rows and all(r["attempts"] >= 2 for r in rows):
                break
            time.sleep(0.3)
        assert rows
        assert {r["state"] for r in rows} == {"pending"}
        assert all(r["attempts"] >= 2 for r in rows), rows
    finally:
        assert stop_serve(server) == 0
    assert pacs.received == []


def test_objects_reach_dcmtk_storescp_over_mutual_tls(tmp_path: Path) -> None:
    """dcmtk's storescp (OpenSSL, not Python's ssl) requires a client certificate by
    default: delivery succeeds only if ours is presented and storescp's checks out."""
    ca = CertificateAuthority(tmp_path / "pki")
    pacs_pair, ours = ca.issue("pacs", server=True), ca.issue("cardiogate", server=False)
    received, port = tmp_path / "received", free_port()
    received.mkdir()
    storescp = subprocess.Popen(
        [dcmtk("storescp"), "-aet", "TLSPACS", "-od", str(received), "-ta", "10", "-td", "10"]
        + ["+tls", str(pacs_pair.key), str(pacs_pair.cert), "+cf", str(ca.cert), str(port)],
        env={**os.environ, "TCP_NODELAY": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    destination = {
        "ae_title": "TLSPACS",
        "host": "127.0.0.1",
        "port": port,
        "tls": True,
        "tls_ca_file": str(ca.cert),
        "tls_cert_file": str(ours.cert),
        "tls_key_file": str(ours.key),
    }
    env = {"CARDIOGATE_DESTINATIONS": json.dumps([destination])}
    server = serve_delivering(tmp_path, "TLSPACS", port, **env)
    try:
        ct = _send_a_ct_until_delivered(server)
    finally:
        assert stop_serve(server) == 0
        storescp.terminate()
        _, err = storescp.communicate(timeout=10)
    stored = [pydicom.dcmread(f) for f in received.iterdir()]
    assert sorted(ds.Modality for ds in stored) == ["OT", "OT", "SEG", "SR"], err.decode()
    assert {ds.StudyInstanceUID for ds in stored} == {ct[0].StudyInstanceUID}
