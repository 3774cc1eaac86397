"""Report versions: what each report of a job was built from and its SR's UIDs, so a
rebuild of the same input gets the same UIDs and a changed input names its predecessor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Table, delete, insert, select

from cardiogate.store.store import Store, utcnow
from cardiogate.store.tables import ReportVersion

_versions: Table = ReportVersion.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class ReportVersionRow:
    """What a job's latest report was built from, and its SR's UIDs."""

    version_index: int
    input_digest: str
    model_version: str
    sr_uids: tuple[str, str, str, str]  # study, series, SOP instance, SOP class


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One report version of a job: what it was built with and its SR's UIDs."""

    version_index: int
    model_version: str
    StudyInstanceUID: str
    SeriesInstanceUID: str
    SOPInstanceUID: str
    SOPClassUID: str
    created_at: datetime


def versions_of_job(store: Store, job_id: int) -> list[VersionRecord]:
    """Every report version of a job, oldest first (for operators)."""
    with store.transaction() as conn:
        rows = conn.execute(
            select(_versions)
            .where(_versions.c.job_id == job_id)
            .order_by(_versions.c.version_index)
        )
        return [
            VersionRecord(
                r.version_index,
                r.model_version,
                r.sr_study_instance_uid,
                r.sr_series_instance_uid,
                r.sr_sop_instance_uid,
                r.sr_sop_class_uid,
                r.created_at,
            )
            for r in rows
        ]


def latest_version(store: Store, job_id: int) -> ReportVersionRow | None:
    """The job's latest report version, if it was ever reported with objects."""
    return latest_version_before(store, job_id, None)


def latest_version_before(
    store: Store, job_id: int, version_index: int | None
) -> ReportVersionRow | None:
    """The job's latest report version below ``version_index`` (None: of all)."""
    query = select(_versions).where(_versions.c.job_id == job_id)
    if version_index is not None:
        query = query.where(_versions.c.version_index < version_index)
    with store.transaction() as conn:
        row = conn.execute(query.order_by(_versions.c.version_index.desc()).limit(1)).first()
    if row is None:
        return None
    m = row._mapping
    return ReportVersionRow(
        m["version_index"],
        m["input_digest"],
        m["model_version"],
        (
            m["sr_study_instance_uid"],
            m["sr_series_instance_uid"],
            m["sr_sop_instance_uid"],
            m["sr_sop_class_uid"],
        ),
    )


def record_version(
    conn: Connection,
    job_id: int,
    version_index: int,
    input_digest: str,
    model_version: str,
    sr_uids: tuple[str, str, str, str],
) -> None:
    """Record (or re-record, for a rebuild of the same version) a job's report version."""
    conn.execute(
        delete(_versions).where(
            _versions.c.job_id == job_id, _versions.c.version_index == version_index
        )
    )
    study, series, sop, sop_class = sr_uids
    conn.execute(
        insert(_versions).values(
            job_id=job_id,
            version_index=version_index,
            input_digest=input_digest,
            model_version=model_version,
            sr_study_instance_uid=study,
            sr_series_instance_uid=series,
            sr_sop_instance_uid=sop,
            sr_sop_class_uid=sop_class,
            created_at=utcnow(),
        )
    )
