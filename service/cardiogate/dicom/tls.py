"""DICOM over TLS at the SCP (PS3.15 B.1, the secure transport connection profiles).

The listening socket stays a plain TCP socket shared by every listener process; each
accepted connection is wrapped here and its handshake runs in the connection's own thread
with a deadline, so a slow or failing client never holds up the accept loop.
"""

from __future__ import annotations

import logging
import socket
import ssl
from pathlib import Path

from cardiogate.errors import ConfigurationError

log = logging.getLogger(__name__)


def server_context(cert_file: Path, key_file: Path, ca_file: Path | None) -> ssl.SSLContext:
    """A server context: TLS 1.2 or later, our certificate; with ``ca_file`` the client must
    present a certificate that chains to it.

    Raises
    ------
    ConfigurationError
        When the files cannot be read or the key does not match the certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(cert_file), str(key_file))
        if ca_file is not None:
            context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as e:
        raise ConfigurationError(
            f"DICOM TLS: cannot load {cert_file.name} / {key_file.name}"
            + (f" / {ca_file.name}" if ca_file else "")
            + f": {e}"
        ) from e
    context.verify_mode = ssl.CERT_REQUIRED if ca_file is not None else ssl.CERT_NONE
    return context


def wrap_accepted(context: ssl.SSLContext, client: socket.socket) -> ssl.SSLSocket:
    """Wrap an accepted connection without starting the handshake (see :func:`handshake`)."""
    return context.wrap_socket(client, server_side=True, do_handshake_on_connect=False)


def handshake(client: ssl.SSLSocket, timeout_seconds: float) -> str | None:
    """Run the TLS handshake within ``timeout_seconds``; None on success, else why it failed.

    The socket is left blocking, as pynetdicom expects, once the handshake is done.
    """
    previous = client.gettimeout()
    client.settimeout(timeout_seconds)
    try:
        client.do_handshake()
    except TimeoutError:
        return "handshake timed out"
    except ssl.SSLError as e:
        return str(e.reason or e.__class__.__name__)
    except OSError as e:
        return e.strerror or e.__class__.__name__
    client.settimeout(previous)
    return None
