"""The status page at ``/``: log in with the API token once (a session cookie keeps it),
log out, and the key-image thumbnails. Not part of the OpenAPI schema."""

from __future__ import annotations

import logging
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cardiogate.api.deps import (
    BearerDep,
    HealthDep,
    ModelsDep,
    SettingsDep,
    StoreDep,
    TasksDep,
    authenticated,
    require_token,
    token_matches,
)
from cardiogate.api.page_html import login_page, status_page
from cardiogate.api.page_view import collect
from cardiogate.api.sessions import COOKIE, Sessions
from cardiogate.api.thumbnail import KeyImageError, key_image_path, thumbnail_png
from cardiogate.dicom.outbox_files import OutboxFiles
from cardiogate.errors import SpoolError
from cardiogate.store.outbox import Outbox

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 4096
JobIdPath = Annotated[int, Path(ge=1)]
# the page has no script and loads nothing from elsewhere; forms post to this origin only
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)


def _html(content: str, status_code: int = status.HTTP_200_OK) -> HTMLResponse:
    return HTMLResponse(content, status_code=status_code, headers=_HEADERS)


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.sessions
    return sessions


@router.get("/", response_class=HTMLResponse)
def show_status(
    request: Request,
    credentials: BearerDep,
    store: StoreDep,
    health: HealthDep,
    models: ModelsDep,
    settings: SettingsDep,
    tasks: TasksDep,
) -> HTMLResponse:
    """The status page, or the login form (401) without a session or bearer token."""
    if not authenticated(request, credentials):
        return _html(login_page(), status.HTTP_401_UNAUTHORIZED)
    if settings is None:  # an API built without settings (tests, tools): no spool to read
        view = collect(store, health, models, tasks)
    else:
        view = collect(
            store,
            health,
            models,
            tasks,
            viewer_url_template=settings.viewer_url_template,
            spool_dir=settings.spool_dir,
            show_patient=settings.status_page_show_patient,
        )
    return _html(status_page(view, logout=request.app.state.api_token is not None))


async def _form_token(request: Request) -> str:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "the form is too large")
    fields = parse_qs(body.decode("utf-8", errors="replace"))
    return fields.get("token", [""])[0].strip()


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token (constant time); on success a session cookie and back to ``/``."""
    if request.app.state.api_token is None:  # auth is off: nothing to log in to
        return RedirectResponse("/", status.HTTP_303_SEE_OTHER)
    if not token_matches(request, await _form_token(request)):
        log.warning("status page: a login with a wrong token")
        return _html(login_page("Wrong token."), status.HTTP_401_UNAUTHORIZED)
    response = RedirectResponse("/", status.HTTP_303_SEE_OTHER)
    sessions = _sessions(request)
    response.set_cookie(
        COOKIE,
        sessions.create(),
        max_age=int(sessions.ttl_seconds),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session and forget the cookie."""
    _sessions(request).end(request.cookies.get(COOKIE))
    response = RedirectResponse("/", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.get("/jobs/{job_id}/thumbnail.png", dependencies=[Depends(require_token)])
def thumbnail(job_id: JobIdPath, store: StoreDep, settings: SettingsDep) -> Response:
    """A PNG of the job's key image, at most 256 pixels a side; 404 when it has none."""
    path = key_image_path(Outbox(store).rows_of_job(job_id))
    if path is None or settings is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this job has no key image")
    try:
        png = thumbnail_png(OutboxFiles(settings.outbox_dir).absolute(path))
    except (KeyImageError, SpoolError) as e:
        log.warning("key image of job %d: %s", job_id, e)
        raise HTTPException(status.HTTP_404_NOT_FOUND, "this job's key image is gone") from e
    return Response(
        png, media_type="image/png", headers={**_HEADERS, "Cache-Control": "private, max-age=60"}
    )
