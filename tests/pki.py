"""Test certificates made with the openssl command line: a CA, and server or client
certificates it signs (servers for 127.0.0.1), or self-signed ones that are their own CA."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make the test certificates")
    subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl(
        *("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
        *("-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}"),
        *("-addext", "subjectAltName=IP:127.0.0.1"),
    )
    return cert, key


@dataclass(frozen=True)
class Pair:
    """A certificate and its private key (PEM files)."""

    cert: Path
    key: Path


class CertificateAuthority:
    """A CA in ``folder`` that issues server and client certificates."""

    def __init__(self, folder: Path, name: str = "test-ca") -> None:
        self.folder = folder
        cert, key = self_signed(folder, name)
        self.cert, self.key = cert, key

    def issue(self, name: str, *, server: bool) -> Pair:
        """A certificate signed by this CA: a server's names 127.0.0.1, a client's does not."""
        key, csr = self.folder / f"{name}.key", self.folder / f"{name}.csr"
        cert, ext = self.folder / f"{name}.pem", self.folder / f"{name}.ext"
        usage = "serverAuth" if server else "clientAuth"
        lines = [f"extendedKeyUsage={usage}"]
        if server:
            lines.append("subjectAltName=IP:127.0.0.1")
        ext.write_text("\n".join(lines) + "\n")
        _openssl(
            *("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key)),
            *("-out", str(csr), "-subj", f"/CN={name}"),
        )
        _openssl(
            *("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key)),
            *("-CAcreateserial", "-days", "1", "-out", str(cert), "-extfile", str(ext)),
        )
        return Pair(cert, key)
