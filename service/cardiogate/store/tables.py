"""The database schema (SQLAlchemy 2). Column names follow the DICOM keywords they hold.

Times are naive UTC datetimes. SQLite (WAL) is the embedded default; the same tables serve
PostgreSQL when several replicas share one database. There, ``replica_id`` names the replica
whose files a row needs (its spool for a series or job, its outbox for an outbox row), and a
running job's claim is a lease (``claimed_by`` until ``claim_expires_at``).

A change here needs a revision in ``migrations/versions`` (a test compares the two).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

UID = String(64)
REPLICA = String(64)


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "studies"

    study_instance_uid: Mapped[str] = mapped_column(UID, primary_key=True)
    first_received_at: Mapped[datetime] = mapped_column(DateTime)
    last_received_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class Series(Base):
    """One series as it arrives; ``state`` is ``receiving`` until the quiet period passes."""

    __tablename__ = "series"

    series_instance_uid: Mapped[str] = mapped_column(UID, primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(
        ForeignKey("studies.study_instance_uid"), index=True
    )
    modality: Mapped[str | None] = mapped_column(String(16))
    series_number: Mapped[int | None] = mapped_column(Integer)
    series_description: Mapped[str | None] = mapped_column(String(64))
    sop_class_uid: Mapped[str | None] = mapped_column(UID)
    body_part_examined: Mapped[str | None] = mapped_column(String(16))
    protocol_name: Mapped[str | None] = mapped_column(String(64))
    image_type: Mapped[str | None] = mapped_column(String(256))
    contrast_bolus_agent: Mapped[str | None] = mapped_column(String(64))
    slice_thickness: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="receiving")
    first_received_at: Mapped[datetime] = mapped_column(DateTime)
    last_received_at: Mapped[datetime] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    reopened_count: Mapped[int] = mapped_column(Integer, default=0)
    replica_id: Mapped[str | None] = mapped_column(REPLICA)  # whose spool received it last

    __table_args__ = (Index("ix_series_state_last", "state", "last_received_at"),)


class Instance(Base):
    """One stored SOP instance; ``path`` is relative to the spool directory."""

    __tablename__ = "instances"

    sop_instance_uid: Mapped[str] = mapped_column(UID, primary_key=True)
    series_instance_uid: Mapped[str] = mapped_column(
        ForeignKey("series.series_instance_uid"), index=True
    )
    sop_class_uid: Mapped[str] = mapped_column(UID)
    transfer_syntax_uid: Mapped[str] = mapped_column(UID)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    number_of_frames: Mapped[int] = mapped_column(Integer, default=1)
    path: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    calling_ae_title: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(DateTime)
    replaced_count: Mapped[int] = mapped_column(Integer, default=0)


class Job(Base):
    """The analysis of one complete series. States: queued -> running -> reported ->
    delivered, or failed(reason), or ignored(reason). A re-completed series is re-queued.
    ``replica_id`` is the series' (whose spool has the input); a running job is leased to
    ``claimed_by`` until ``claim_expires_at``, and ``attempts`` counts claims (a fence:
    only the latest claim may finish the job).

    ``needs_review`` and ``review_reason`` are the result's (set with it, for the review
    queue); ``result_digest`` names the result apart from its timings, so a verdict is
    known to be about this result or an earlier one."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    series_instance_uid: Mapped[str] = mapped_column(
        ForeignKey("series.series_instance_uid"), unique=True
    )
    study_instance_uid: Mapped[str] = mapped_column(UID, index=True)
    task: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[str | None] = mapped_column(Text)  # the task's result model, as JSON
    result_digest: Mapped[str | None] = mapped_column(String(64))
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    review_reason: Mapped[str | None] = mapped_column(String(500))
    # why it was selected for review (cardiogate.learning.selection): uncertainty, ood,
    # shadow_disagreement, audit; None when it was not
    review_criterion: Mapped[str | None] = mapped_column(String(32))
    model_name: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(32))
    provider: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    replica_id: Mapped[str | None] = mapped_column(REPLICA)
    claimed_by: Mapped[str | None] = mapped_column(REPLICA)
    claim_expires_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (Index("ix_jobs_review", "needs_review", "finished_at"),)


class JobEvent(Base):
    """One entry of a job's timeline, never updated or deleted: queued, started (each
    attempt), warning (a repair made while building its objects), failed, ignored,
    reported, re-queued (late instance, restart, operator retry) and delivered, with a
    detail an operator can act on (UIDs, counts and attribute names only)."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    event: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)


class OutboxItem(Base):
    """One result object of a job for one destination. States: pending -> sent, or dead
    after too many failed attempts. ``path`` is relative to the outbox directory; the row is
    due again at ``next_attempt_at`` (a claim moves that forward, so a crash mid-send only
    delays the object)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    destination: Mapped[str] = mapped_column(String(128))  # AE@host:port
    sop_class_uid: Mapped[str] = mapped_column(UID)
    sop_instance_uid: Mapped[str] = mapped_column(UID)
    path: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    replica_id: Mapped[str | None] = mapped_column(REPLICA)  # whose outbox has the file

    __table_args__ = (
        UniqueConstraint("job_id", "destination", "sop_instance_uid"),
        Index("ix_outbox_due", "state", "destination", "next_attempt_at"),
    )


class ReportVersion(Base):
    """One distinct report of a job's series: the input it was built from and its SR. A
    re-run on the same input rebuilds the same version (same UIDs); on changed input (late
    instances) or another model version, the next version, which names this SR as its
    predecessor."""

    __tablename__ = "report_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    version_index: Mapped[int] = mapped_column(Integer)
    input_digest: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(32))
    sr_study_instance_uid: Mapped[str] = mapped_column(UID)
    sr_series_instance_uid: Mapped[str] = mapped_column(UID)
    sr_sop_instance_uid: Mapped[str] = mapped_column(UID)
    sr_sop_class_uid: Mapped[str] = mapped_column(UID)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    __table_args__ = (UniqueConstraint("job_id", "version_index"),)


class Review(Base):
    """A reviewer's verdict on one result of a job (the active-learning loop): ``agree`` or
    ``disagree`` with the model, the reviewer's corrections, a free-text note, and the
    result with the model that produced it. One verdict per reviewer and result: a re-run
    with a different result needs its own, and the earlier verdicts stay, each with the
    result it judged."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    result_digest: Mapped[str | None] = mapped_column(String(64))  # the job's, when judged
    verdict: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(2000), default="")
    model_name: Mapped[str | None] = mapped_column(String(64))
    model_version: Mapped[str | None] = mapped_column(String(32))
    result: Mapped[str | None] = mapped_column(Text)  # the result judged, as it was then
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    reviewer: Mapped[str] = mapped_column(
        String(64), default="anonymous", server_default="anonymous"
    )  # a pseudonymous id
    role: Mapped[str] = mapped_column(
        String(16), default="reviewer", server_default="reviewer"
    )  # or "adjudicator"
    corrections: Mapped[str | None] = mapped_column(Text)  # JSON, the task's correction_model
    settles: Mapped[bool] = mapped_column(  # the review that settled its result's case
        Boolean, default=False, server_default=false()
    )

    __table_args__ = (
        UniqueConstraint(
            "job_id", "result_digest", "reviewer", name="uq_reviews_job_result_reviewer"
        ),
    )


class ShadowResult(Base):
    """A candidate model's result on a job's series (shadow mode), stored beside the serving
    one and never sent: the result, its digest and its comparison with the serving result
    (``Task.compare``, JSON). One row per job and candidate version; a re-run replaces it."""

    __tablename__ = "shadow_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), index=True)
    task: Mapped[str] = mapped_column(String(16))
    model_name: Mapped[str] = mapped_column(String(64))
    model_version: Mapped[str] = mapped_column(String(32))
    result: Mapped[str] = mapped_column(Text)
    result_digest: Mapped[str] = mapped_column(String(64))
    comparison: Mapped[str] = mapped_column(Text)  # JSON: agree, difference, summary
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)

    __table_args__ = (UniqueConstraint("job_id", "model_version", name="uq_shadow_job_version"),)


class ModelPromotion(Base):
    """One ``cardiogate models promote`` or ``rollback``: the task, the serving version
    before and after, who did it (a pseudonymous id), a note, and when."""

    __tablename__ = "model_promotions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task: Mapped[str] = mapped_column(String(16), index=True)
    action: Mapped[str] = mapped_column(String(16))  # promote, rollback
    from_version: Mapped[str | None] = mapped_column(String(32))
    to_version: Mapped[str] = mapped_column(String(32))
    by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
