"""Our Storage SCP with DICOM TLS, in process, against pynetdicom TLS SCUs on loopback:
server-only TLS takes clients without a certificate; a stalled, plain or TLS 1.1 client is
refused and counted, and never holds up the clients behind it."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cardiogate_phantoms import make_ct_series
from prometheus_client import REGISTRY
from pynetdicom import AE
from pynetdicom.sop_class import Verification

from peers import RunningSCP, start_scp
from pki import CertificateAuthority

SUCCESS = 0x0000
HANDSHAKE_TIMEOUT = 2.0
pytestmark = pytest.mark.timeout(60)  # the module takes ~12 s


def tls_failures() -> float:
    value = REGISTRY.get_sample_value("cardiogate_associations_total", {"outcome": "tls_failed"})
    return value or 0.0


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_scp(tmp_path: Path, ca: CertificateAuthority) -> Iterator[RunningSCP]:
    server = ca.issue("scp", server=True)
    running = start_scp(
        tmp_path,
        dicom_tls_cert_file=server.cert,
        dicom_tls_key_file=server.key,
        acse_timeout_seconds=HANDSHAKE_TIMEOUT,
    )
    yield running
    running.listener.stop(5)
    running.store.dispose()


def client_context(ca: CertificateAuthority) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca.cert))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def echo_over_tls(port: int, context: ssl.SSLContext) -> Any:
    """The association of a TLS C-ECHO (already released), or the refused one."""
    ae = AE(ae_title="TLSSCU")
    ae.add_requested_context(Verification)
    ae.acse_timeout = 5
    assoc = ae.associate("127.0.0.1", port, ae_title="CARDIOGATE", tls_args=(context, "127.0.0.1"))
    if assoc.is_established:
        assoc.cardiogate_echo = int(assoc.send_c_echo().Status)
        assoc.release()
    return assoc


def test_server_only_tls_takes_a_client_without_a_certificate(
    tls_scp: RunningSCP, ca: CertificateAuthority
) -> None:
    ct = make_ct_series(7, n_slices=3, rows=32, columns=32).datasets
    ae = AE(ae_title="TLSSCU")
    for ds in ct:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate(
        "127.0.0.1", tls_scp.port, ae_title="CARDIOGATE", tls_args=(client_context(ca), "127.0.0.1")
    )
    assert assoc.is_established
    statuses = [int(assoc.send_c_store(ds).Status) for ds in ct]
    assoc.release()
    assert statuses == [SUCCESS] * 3
    files = sorted(p.name for p in tls_scp.spool.root.rglob("*.dcm"))
    assert files == sorted(f"{ds.SOPInstanceUID}.dcm" for ds in ct)


def test_a_stalled_handshake_does_not_hold_up_others_and_is_cut_off(
    tls_scp: RunningSCP, ca: CertificateAuthority
) -> None:
    before = tls_failures()
    with socket.create_connection(("127.0.0.1", tls_scp.port)) as stalled:
        started = time.monotonic()
        assoc = echo_over_tls(tls_scp.port, client_context(ca))
        assert assoc.cardiogate_echo == SUCCESS
        assert time.monotonic() - started < HANDSHAKE_TIMEOUT  # did not wait for the stall
        stalled.settimeout(HANDSHAKE_TIMEOUT + 5)
        assert stalled.recv(1) == b""  # the server hung up on the silent client
        assert time.monotonic() - started >= HANDSHAKE_TIMEOUT - 0.5
    assert tls_failures() == before + 1


def test_a_plain_tcp_client_is_refused_cleanly(
    tls_scp: RunningSCP, ca: CertificateAuthority
) -> None:
    before = tls_failures()
    ae = AE(ae_title="PLAINSCU")
    ae.add_requested_context(Verification)
    ae.acse_timeout = 5
    started = time.monotonic()
    assoc = ae.associate("127.0.0.1", tls_scp.port, ae_title="CARDIOGATE")
    assert not assoc.is_established
    assert time.monotonic() - started < 3  # refused at once, not left to time out
    assert tls_failures() == before + 1
    assert echo_over_tls(tls_scp.port, client_context(ca)).cardiogate_echo == SUCCESS


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_1_1_is_refused(tls_scp: RunningSCP, ca: CertificateAuthority) -> None:
    before = tls_failures()
    old = client_context(ca)
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
    assoc = echo_over_tls(tls_scp.port, old)
    assert not assoc.is_established
    deadline = time.monotonic() + 5
    while tls_failures() == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tls_failures() == before + 1  # the server saw the attempt and refused it
