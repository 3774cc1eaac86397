"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Annotated, Protocol

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cardiogate.api.sessions import COOKIE, Sessions
from cardiogate.api.token_file import token_source
from cardiogate.config import Destination, Settings
from cardiogate.inference.engine import LoadedModel
from cardiogate.store import Store
from cardiogate.tasks import Tasks


class HealthProbe(Protocol):
    def readiness(self) -> tuple[dict[str, bool], dict[str, str | int | float]]: ...


class ModelsProbe(Protocol):
    def loaded_models(self) -> Mapping[str, LoadedModel]: ...


class NoModels:
    """What the API shows when it was built without an engine (tests, tools)."""

    def loaded_models(self) -> Mapping[str, LoadedModel]:
        return {}


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_health(request: Request) -> HealthProbe:
    health: HealthProbe = request.app.state.health
    return health


def get_settings(request: Request) -> Settings | None:
    """The service's settings; None for an API built without them (no destinations)."""
    settings: Settings | None = request.app.state.settings
    return settings


def get_destinations(request: Request) -> list[Destination]:
    settings = get_settings(request)
    return [] if settings is None else settings.destinations


def get_models(request: Request) -> ModelsProbe:
    models: ModelsProbe = request.app.state.models
    return models


def get_tasks(request: Request) -> Tasks:
    """The installed tasks, which turn stored results into summaries."""
    tasks: Tasks = request.app.state.tasks
    return tasks


_bearer = HTTPBearer(auto_error=False)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
SAFE_METHODS = frozenset({"GET", "HEAD"})


def token_matches(request: Request, offered: str) -> bool:
    """``offered`` is the API token (constant-time comparison)."""
    token: str | None = request.app.state.api_token
    return token is not None and secrets.compare_digest(
        offered.encode("utf-8"), token.encode("utf-8")
    )


def authenticated(request: Request, credentials: HTTPAuthorizationCredentials | None) -> bool:
    """No token configured (auth off), ``Authorization: Bearer <token>``, or, for reading
    only (GET, HEAD), a status-page session cookie. Changes need the header, so a page in
    another tab cannot make the browser send them."""
    if request.app.state.api_token is None:
        return True
    if credentials is not None and token_matches(request, credentials.credentials):
        return True
    sessions: Sessions = request.app.state.sessions
    return request.method in SAFE_METHODS and sessions.valid(request.cookies.get(COOKIE))


def require_token(request: Request, credentials: BearerDep) -> None:
    """Guards ``/api/v1`` (and ``/metrics`` when configured): 401 unless
    :func:`authenticated`."""
    if not authenticated(request, credentials):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token: send the header 'Authorization: Bearer <token>' "
            f"with the token from {token_source(get_settings(request))}",
            headers={"WWW-Authenticate": "Bearer"},
        )


MAX_SQL_INTEGER = 2**63 - 1  # SQLite and PostgreSQL BIGINT; a larger int cannot be bound

JobIdPath = Annotated[int, Path(ge=1, le=MAX_SQL_INTEGER)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=MAX_SQL_INTEGER)]

StoreDep = Annotated[Store, Depends(get_store)]
HealthDep = Annotated[HealthProbe, Depends(get_health)]
SettingsDep = Annotated[Settings | None, Depends(get_settings)]
DestinationsDep = Annotated[list[Destination], Depends(get_destinations)]
ModelsDep = Annotated[ModelsProbe, Depends(get_models)]
TasksDep = Annotated[Tasks, Depends(get_tasks)]
