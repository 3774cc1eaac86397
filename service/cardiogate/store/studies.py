"""The ``studies`` table, read with its series for the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, func, select

from cardiogate.store import series
from cardiogate.store.records import SeriesSummary, StudySummary
from cardiogate.store.tables import Study

_studies: Table = Study.__table__  # type: ignore[assignment]


def page(conn: Connection, limit: int, offset: int) -> tuple[list[StudySummary], int]:
    """Studies, most recently received first, and the total count (three queries,
    whatever the page size)."""
    total = conn.execute(select(func.count()).select_from(_studies)).scalar_one()
    rows = conn.execute(
        select(_studies).order_by(_studies.c.last_received_at.desc()).limit(limit).offset(offset)
    ).all()
    uids = [r._mapping["study_instance_uid"] for r in rows]
    by_study: dict[str, list[SeriesSummary]] = {uid: [] for uid in uids}
    for s in series.of_studies(conn, uids):
        by_study[s.StudyInstanceUID].append(s)
    return [_summary(r, by_study[r._mapping["study_instance_uid"]]) for r in rows], int(total)


def get(conn: Connection, StudyInstanceUID: str) -> StudySummary | None:
    row = conn.execute(
        select(_studies).where(_studies.c.study_instance_uid == StudyInstanceUID)
    ).first()
    if row is None:
        return None
    return _summary(row, series.of_studies(conn, [StudyInstanceUID]))


def _summary(row: Any, of_study: list[SeriesSummary]) -> StudySummary:
    return StudySummary(
        StudyInstanceUID=row._mapping["study_instance_uid"],
        modalities=sorted({s.Modality for s in of_study if s.Modality}),
        series_count=len(of_study),
        instance_count=sum(s.instance_count for s in of_study),
        size_bytes=sum(s.size_bytes for s in of_study),
        first_received_at=row._mapping["first_received_at"],
        last_received_at=row._mapping["last_received_at"],
    )
