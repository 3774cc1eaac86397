"""The FastAPI application factory. Nothing is built at import time."""

from __future__ import annotations

from fastapi import Depends, FastAPI, Response, status
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cardiogate import __version__
from cardiogate.api import jobs, operations, page, results, review, shadow
from cardiogate.api.deps import HealthDep, HealthProbe, ModelsProbe, NoModels, require_token
from cardiogate.api.errors import install_error_handlers
from cardiogate.api.routes import router
from cardiogate.api.schemas import Readiness
from cardiogate.api.sessions import Sessions
from cardiogate.config import Settings
from cardiogate.store import Store
from cardiogate.tasks import Tasks, default_tasks


def create_api(
    store: Store,
    health: HealthProbe,
    api_token: str | None = None,
    *,
    settings: Settings | None = None,
    models: ModelsProbe | None = None,
    metrics_auth: bool = False,
    tasks: Tasks | None = None,
) -> FastAPI:
    """The API over ``store``; ``models`` (the engine's loaded models) and ``settings`` (the
    destinations, our AE title, the outbox) are read per request, as ``health`` is for
    ``/readyz``. With ``api_token``, ``/api/v1``, the status page (and with ``metrics_auth``
    ``/metrics``) need it; ``/healthz`` and ``/readyz`` stay open."""
    api = FastAPI(
        title="cardiogate",
        version=__version__,
        description="Status API of cardiogate. Research software, not for clinical use.",
    )
    api.state.store = store
    api.state.health = health
    api.state.api_token = api_token
    api.state.settings = settings
    api.state.models = models if models is not None else NoModels()
    api.state.tasks = tasks if tasks is not None else default_tasks(settings)
    api.state.sessions = Sessions()

    @api.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is alive and serving HTTP."""
        return {"status": "alive"}

    @api.get(
        "/readyz",
        response_model=Readiness,
        tags=["operations"],
        responses={503: {"model": Readiness, "description": "A part is not ready"}},
    )
    def readyz(health: HealthDep, response: Response) -> Readiness:
        """Ready when every part answers: SCP listening, store reachable (503 otherwise)."""
        checks, details = health.readiness()
        ready = all(checks.values())
        if not ready:
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        return Readiness(ready=ready, checks=checks, details=details)

    @api.get(
        "/metrics",
        response_class=PlainTextResponse,
        tags=["operations"],
        dependencies=[Depends(require_token)] if metrics_auth else [],
    )
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    install_error_handlers(api)
    api.include_router(router)
    api.include_router(jobs.router)
    api.include_router(operations.router)
    api.include_router(review.router)
    api.include_router(results.router)
    api.include_router(shadow.router)
    api.include_router(page.router)
    return api
