"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

import secrets
from typing import Annotated, Protocol

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cardiogate.store import Store


class HealthProbe(Protocol):
    def readiness(self) -> tuple[dict[str, bool], dict[str, str | int | float]]: ...


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_health(request: Request) -> HealthProbe:
    health: HealthProbe = request.app.state.health
    return health


_bearer = HTTPBearer(auto_error=False)


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """When ``CARDIOGATE_API_TOKEN`` is set, ``/api/v1`` needs ``Authorization: Bearer``."""
    token: str | None = request.app.state.api_token
    if token is None:
        return
    if credentials is None or not secrets.compare_digest(credentials.credentials, token):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


StoreDep = Annotated[Store, Depends(get_store)]
HealthDep = Annotated[HealthProbe, Depends(get_health)]
