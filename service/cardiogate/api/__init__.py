"""The HTTP API: health, readiness, Prometheus metrics and the read-only status API."""

from cardiogate.api.app import create_api

__all__ = ["create_api"]
