"""Operations routes under ``/api/v1``: the loaded models, the destinations with their
delivery counts, and a C-ECHO to one destination."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status

from cardiogate.api.deps import DestinationsDep, ModelsDep, SettingsDep, StoreDep, require_token
from cardiogate.api.errors import error_responses
from cardiogate.api.schemas import DestinationOut, EchoOut, ModelOut
from cardiogate.dicom.echo import echo
from cardiogate.store.outbox import outbox_counts

AETitlePath = Annotated[str, Path(min_length=1, max_length=16)]

router = APIRouter(
    prefix="/api/v1",
    dependencies=[Depends(require_token)],
    tags=["operations"],
    responses=error_responses(401, 422),
)


@router.get("/models", response_model=list[ModelOut])
def list_models(models: ModelsDep) -> list[ModelOut]:
    """Each loaded model: name, version, task, the provider it runs on, its warm-up time and
    its card's training data, intended use and figures."""
    return [ModelOut.of(task, model) for task, model in sorted(models.loaded_models().items())]


@router.get("/destinations", response_model=list[DestinationOut], responses=error_responses(503))
def list_destinations(destinations: DestinationsDep, store: StoreDep) -> list[DestinationOut]:
    counts = outbox_counts(store)
    return [DestinationOut.of(d, counts.get(d.name, {})) for d in destinations]


@router.post(
    "/destinations/{ae_title}/echo", response_model=EchoOut, responses=error_responses(404)
)
def echo_destination(
    ae_title: AETitlePath, settings: SettingsDep, destinations: DestinationsDep
) -> EchoOut:
    """A C-ECHO to the destination (over TLS when configured): success and round trip, or
    why it failed."""
    destination = next((d for d in destinations if d.ae_title == ae_title), None)
    if settings is None or destination is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no destination with this AE title")
    outcome = echo(settings, destination)
    return EchoOut(
        ae_title=ae_title,
        success=outcome.success,
        round_trip_ms=outcome.round_trip_ms,
        reason=outcome.reason,
    )
