"""uvicorn's configuration for the API: plain HTTP, or HTTPS (TLS 1.2 or later) when
``http_tls_cert_file`` and ``http_tls_key_file`` are set."""

from __future__ import annotations

import ssl

import uvicorn
from fastapi import FastAPI

from cardiogate.config import Settings
from cardiogate.errors import ConfigurationError


def server_config(api: FastAPI, settings: Settings) -> uvicorn.Config:
    """A loaded ``uvicorn.Config``, so that a bad certificate fails here, at start-up.

    Raises
    ------
    ConfigurationError
        When the certificate or key cannot be loaded.
    """
    config = uvicorn.Config(
        api,
        log_config=None,
        access_log=False,
        lifespan="off",
        ssl_certfile=settings.http_tls_cert_file,
        ssl_keyfile=settings.http_tls_key_file,
    )
    try:
        config.load()
    except (OSError, ssl.SSLError) as e:
        raise ConfigurationError(
            f"CARDIOGATE_HTTP_TLS_CERT_FILE / CARDIOGATE_HTTP_TLS_KEY_FILE: cannot load: {e}"
        ) from e
    if config.ssl is not None:
        config.ssl.minimum_version = ssl.TLSVersion.TLSv1_2
    return config
