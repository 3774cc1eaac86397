"""TLS settings: files that go together, files that must exist, certificates that must load;
each refused at start-up with the setting's name, before any port opens."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest
from fastapi import FastAPI

from cardiogate.api.https import server_config
from cardiogate.config import load_settings
from cardiogate.dicom.tls import server_context
from cardiogate.errors import ConfigurationError
from pki import CertificateAuthority, Pair


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("CARDIOGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def pair(ca: CertificateAuthority) -> Pair:
    return ca.issue("server", server=True)


def test_tls_is_off_by_default() -> None:
    s = load_settings()
    assert not s.dicom_tls
    assert not s.http_tls


def test_complete_tls_settings_load(pair: Pair, ca: CertificateAuthority) -> None:
    s = load_settings(
        dicom_tls_cert_file=pair.cert,
        dicom_tls_key_file=pair.key,
        dicom_tls_ca_file=ca.cert,
        http_tls_cert_file=pair.cert,
        http_tls_key_file=pair.key,
    )
    assert s.dicom_tls
    assert s.http_tls


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("dicom_tls_cert_file",), "DICOM_TLS_CERT_FILE and CARDIOGATE_DICOM_TLS_KEY_FILE go"),
        (("dicom_tls_key_file",), "DICOM_TLS_CERT_FILE and CARDIOGATE_DICOM_TLS_KEY_FILE go"),
        (("dicom_tls_ca_file",), "DICOM_TLS_CA_FILE needs"),
        (("http_tls_key_file",), "HTTP_TLS_CERT_FILE and CARDIOGATE_HTTP_TLS_KEY_FILE go"),
    ],
)
def test_incomplete_tls_settings_are_refused(
    pair: Pair, names: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(**{name: pair.cert for name in names})


def test_a_missing_tls_file_is_refused_by_its_variable(pair: Pair, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"CARDIOGATE_DICOM_TLS_KEY_FILE: .*no such file"):
        load_settings(dicom_tls_cert_file=pair.cert, dicom_tls_key_file=tmp_path / "gone.key")


def test_a_certificate_that_does_not_load_is_a_configuration_error(
    pair: Pair, ca: CertificateAuthority, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigurationError, match="DICOM TLS: cannot load"):
        server_context(garbage, pair.key, None)
    with pytest.raises(ConfigurationError, match="DICOM TLS: cannot load"):
        server_context(pair.cert, ca.key, None)  # a key that is not the certificate's
    with pytest.raises(ConfigurationError, match="DICOM TLS: cannot load"):
        server_context(pair.cert, pair.key, garbage)


def test_the_server_contexts_refuse_anything_older_than_tls_1_2(
    pair: Pair, ca: CertificateAuthority
) -> None:
    dicom = server_context(pair.cert, pair.key, None)
    assert dicom.minimum_version == ssl.TLSVersion.TLSv1_2
    assert dicom.verify_mode == ssl.CERT_NONE
    mutual = server_context(pair.cert, pair.key, ca.cert)
    assert mutual.verify_mode == ssl.CERT_REQUIRED
    settings = load_settings(http_tls_cert_file=pair.cert, http_tls_key_file=pair.key)
    config = server_config(FastAPI(), settings)
    assert config.ssl is not None
    assert config.ssl.minimum_version == ssl.TLSVersion.TLSv1_2
    assert server_config(FastAPI(), load_settings()).ssl is None


def test_an_https_key_that_does_not_load_is_a_configuration_error(
    pair: Pair, ca: CertificateAuthority
) -> None:
    settings = load_settings(http_tls_cert_file=pair.cert, http_tls_key_file=ca.key)
    with pytest.raises(ConfigurationError, match="CARDIOGATE_HTTP_TLS_CERT_FILE"):
        server_config(FastAPI(), settings)
