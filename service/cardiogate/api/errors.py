"""One JSON shape for every API error: ``{"error": {"status": ..., "message": ...}}``.

Messages name the parameter and the rule it broke, never the value sent (it could carry
an identifier)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from cardiogate.errors import StoreError

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    status: int
    message: str


class ErrorOut(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


_MEANING = {
    400: "The body cannot be read (not UTF-8 text)",
    401: (
        "Missing or wrong bearer token: send 'Authorization: Bearer <token>' with "
        "CARDIOGATE_API_TOKEN, or the token in <data_dir>/api-token when that is unset"
    ),
    404: "No such resource",
    409: "The resource is not in a state that allows this",
    422: "A parameter or the body breaks the schema",
    503: "The database is not reachable; try again shortly",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for these error codes, each with the one error shape."""
    return {code: {"model": ErrorOut, "description": _MEANING[code]} for code in codes}


def error_response(
    status_code: int, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = ErrorOut(error=ErrorDetail(status=status_code, message=message))
    return JSONResponse(body.model_dump(), status_code=status_code, headers=dict(headers or {}))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, HTTPException):  # registered for HTTPException only
        raise exc
    return error_response(exc.status_code, str(exc.detail), exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):  # registered for it only
        raise exc
    problems = [
        f"{'.'.join(str(part) for part in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
        for e in exc.errors()
    ]
    return error_response(status.HTTP_422_UNPROCESSABLE_CONTENT, "; ".join(problems))


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("API %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return error_response(
        status.HTTP_503_SERVICE_UNAVAILABLE, "the database is not reachable; try again shortly"
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("API %s %s failed", request.method, request.url.path)
    return error_response(
        status.HTTP_500_INTERNAL_SERVER_ERROR, "internal error; see the service log"
    )


def install_error_handlers(api: FastAPI) -> None:
    api.add_exception_handler(HTTPException, _http_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(StoreError, _store_error)
    api.add_exception_handler(Exception, _unexpected_error)
