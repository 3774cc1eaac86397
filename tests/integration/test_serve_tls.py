"""``cardiogate serve`` with DICOM over mutual TLS (two listener processes) and the API over
HTTPS, against dcmtk's ``storescu +tls`` / ``echoscu +tls`` and httpx trusting the test CA.
Clients without a certificate, or with one from another CA, are refused; the service stays
up and serves the next client."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest
from cardiogate_phantoms import make_ct_series, write_series

from delivery_peers import write_models
from peers import REPO, ServeProcess, dcmtk, free_port, start_serve, stop_serve
from pki import CertificateAuthority, Pair

DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
# the whole module takes ~50 s on 2 busy cores, ~30 s of it starting serve with two
# listener processes once; each test (and so the first, which pays for the start) has 120 s
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


class Pki:
    def __init__(self, folder: Path) -> None:
        self.ca = CertificateAuthority(folder / "ca")
        self.server = self.ca.issue("cardiogate", server=True)
        self.client = self.ca.issue("modality", server=False)
        self.stranger = CertificateAuthority(folder / "other", "other-ca").issue(
            "stranger", server=False
        )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("serve-tls")
    env = {
        "CARDIOGATE_MODELS_DIR": str(write_models(root / "models")),
        "CARDIOGATE_LISTENER_PROCESSES": "2",
        "CARDIOGATE_ACSE_TIMEOUT_SECONDS": "5",
        "CARDIOGATE_DICOM_TLS_CERT_FILE": str(pki.server.cert),
        "CARDIOGATE_DICOM_TLS_KEY_FILE": str(pki.server.key),
        "CARDIOGATE_DICOM_TLS_CA_FILE": str(pki.ca.cert),
        "CARDIOGATE_HTTP_TLS_CERT_FILE": str(pki.server.cert),
        "CARDIOGATE_HTTP_TLS_KEY_FILE": str(pki.server.key),
    }
    running = start_serve(root / "data", env=env, https_ca=pki.ca.cert)
    yield running
    assert stop_serve(running) == 0


def _dcmtk(
    tool: str, server: ServeProcess, *args: str, files: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess[str]:
    command = [dcmtk(tool), "-aec", "CARDIOGATE", "-to", "10", "-ta", "10", "-td", "10", *args]
    command += ["127.0.0.1", str(server.dicom_port), *map(str, files)]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=DCMTK_ENV, check=False
    )


def _tls(pair: Pair, pki: Pki) -> list[str]:
    return ["+tls", str(pair.key), str(pair.cert), "+cf", str(pki.ca.cert)]


def _tls_failures(server: ServeProcess) -> float:
    text = httpx.get(server.base_url + "/metrics", verify=server.verify, timeout=5).text
    match = re.search(r'^cardiogate_associations_total\{outcome="tls_failed"\} (\S+)$', text, re.M)
    assert match, "the tls_failed outcome is missing from /metrics"
    return float(match.group(1))


def test_a_key_that_is_not_the_certificates_stops_serve_before_any_port_opens(
    pki: Pki, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "CARDIOGATE_DATA_DIR": str(tmp_path / "data"),
        "CARDIOGATE_DICOM_HOST": "127.0.0.1",
        "CARDIOGATE_DICOM_PORT": str(free_port()),
        "CARDIOGATE_DICOM_TLS_CERT_FILE": str(pki.server.cert),
        "CARDIOGATE_DICOM_TLS_KEY_FILE": str(pki.client.key),
    }
    result = subprocess.run(
        [sys.executable, "-m", "cardiogate", "serve"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "DICOM TLS: cannot load" in result.stderr
    output = result.stdout + result.stderr
    assert "accepting on" not in output  # no listener started
    assert "loaded on" not in output  # nor were the models loaded first


def test_dcmtk_storescu_over_mutual_tls_stores_the_files(
    server: ServeProcess, pki: Pki, tmp_path: Path
) -> None:
    if (
        "OpenSSL"
        not in subprocess.run(
            [dcmtk("storescu"), "--version"], capture_output=True, text=True, check=False
        ).stdout
    ):
        pytest.fail("this dcmtk is built without OpenSSL: it cannot speak DICOM TLS")
    paths = write_series(make_ct_series(21, n_slices=4, rows=64, columns=64), tmp_path / "ct")
    result = _dcmtk("storescu", server, *_tls(pki.client, pki), files=tuple(paths))
    assert result.returncode == 0, result.stdout + result.stderr
    sent = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in paths}
    spooled = {p.stem for p in (server.data_dir / "spool").rglob("*.dcm")}
    assert sent <= spooled


def test_echoscu_over_tls_is_served_by_every_listener_process(
    server: ServeProcess, pki: Pki
) -> None:
    # Two processes accept from the socket; a process that did not wrap its connections
    # would fail about half of these.
    for _ in range(8):
        result = _dcmtk("echoscu", server, *_tls(pki.client, pki))
        assert result.returncode == 0, result.stdout + result.stderr


def test_clients_without_a_trusted_certificate_are_refused_and_the_next_is_served(
    server: ServeProcess, pki: Pki
) -> None:
    before = _tls_failures(server)
    anonymous = _dcmtk("echoscu", server, "+tla", "+cf", str(pki.ca.cert))
    assert anonymous.returncode != 0
    stranger = _dcmtk("echoscu", server, *_tls(pki.stranger, pki))
    assert stranger.returncode != 0
    plain = _dcmtk("echoscu", server)
    assert plain.returncode != 0
    assert server.proc.poll() is None
    assert _tls_failures(server) == before + 3
    trusted = _dcmtk("echoscu", server, *_tls(pki.client, pki))
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr


def test_the_api_is_served_over_https_only(server: ServeProcess) -> None:
    assert (
        httpx.get(server.base_url + "/healthz", verify=server.verify, timeout=5).status_code == 200
    )
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{server.http_port}/healthz", timeout=5)
    with pytest.raises(httpx.ConnectError):  # the test CA is not in the system's store
        httpx.get(server.base_url + "/healthz", timeout=5)


def test_the_session_cookie_is_secure_over_https(server: ServeProcess) -> None:
    r = httpx.post(
        server.base_url + "/login",
        data={"token": server.api_token or ""},
        verify=server.verify,
        timeout=5,
    )
    assert r.status_code == 303
    assert "; secure" in r.headers["set-cookie"].lower()
