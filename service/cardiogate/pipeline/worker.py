"""The job worker: routes complete series and runs the analyses of queued jobs.

Each state change is one row update (``store.jobs``), so a restart resumes: queued jobs
wait, jobs left running by a crash run again. A job that fails records a reason an
operator can act on; the worker and the service go on with the next one. A claim is a lease
that a heartbeat thread renews while the job runs, so when replicas share the database a
dead replica's job is taken over once its lease expires, and only the latest claim may
report it (``store.jobs``).

When destinations are configured, a job's result objects (``cardiogate.reports``) are
written to the outbox directory first and their outbox rows are committed in the same
transaction that marks the job ``reported``: a crash before that commit leaves the job
``running`` (re-queued at start-up, and its re-run writes the same files again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection

from cardiogate.config import Settings
from cardiogate.dicom.outbox_files import OutboxFiles
from cardiogate.dicom.spool import Spool
from cardiogate.errors import CardiogateError, NotAnalysableError
from cardiogate.inference import InferenceEngine
from cardiogate.learning import selection
from cardiogate.learning.shadow import publish_learning_metrics, shadow_and_select
from cardiogate.metrics import JOB_SECONDS, JOB_TO_REPORT, JOBS
from cardiogate.pipeline import reconstructions
from cardiogate.pipeline.router import route
from cardiogate.reports import Predecessor
from cardiogate.store import Store
from cardiogate.store.jobs import JobQueue, JobRecord
from cardiogate.store.outbox import Outbox, StagedObject, stage
from cardiogate.store.store import utcnow
from cardiogate.store.versions import (
    ReportVersionRow,
    latest_version,
    latest_version_before,
    record_version,
)
from cardiogate.tasks import Analysed, Outcome, Tasks, load_tasks

log = logging.getLogger(__name__)


SR_STORAGE = {
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
}


@dataclass
class _Version:
    index: int
    digest: str
    model_version: str
    predecessor: ReportVersionRow | None
    sr_uids: tuple[str, str, str, str] | None = None
    warnings: list[str] = field(default_factory=list)  # repairs made building the objects


class JobWorker:
    """Routes completed series to jobs and runs them on ``settings.worker_threads`` threads."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        spool: Spool,
        engine: InferenceEngine,
        tasks: Tasks | None = None,
        outbox_files: OutboxFiles | None = None,
        on_reported: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.spool = spool
        self.engine = engine
        self.jobs = JobQueue(store, settings.job_lease_seconds)
        self.outbox = Outbox(store)
        self.outbox_files = outbox_files or OutboxFiles(settings.outbox_dir)
        self.on_reported = on_reported
        self.destinations = [d.name for d in settings.destinations]
        self.tasks = load_tasks(settings) if tasks is None else tasks
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._held: dict[int, JobRecord] = {}  # the claims the heartbeat renews
        self._held_lock = threading.Lock()

    def route_completed(
        self,
        series_uids: list[str],
        *,
        only_new: bool = False,
        again: str = "series completed again",
    ) -> None:
        """Turn each complete series into a queued job or an ignored one (with reason);
        ``only_new`` leaves series that have a job (another replica routed it meanwhile);
        ``again`` says on a re-routed job's timeline why it is routed again.
        A candidate of a task that analyses one series per study is weighed against the
        study's others (:mod:`.reconstructions`)."""
        loaded = {t for t in self.engine.models if t in self.tasks}
        for uid in series_uids:
            series = self.store.series_attributes(uid)
            if series is None:
                continue
            decision = route(series, self.tasks, loaded)
            task, reason = decision.task, decision.reason
            settled = reconstructions.Settlement(scored=True)
            if task is not None and self.tasks[task].one_per_study:
                study = self.store.series_of_study_with_jobs(series.StudyInstanceUID)
                settled = reconstructions.settle(self.tasks[task], uid, study)
                if not settled.scored:
                    task, reason = None, settled.reason
            if task is None:
                self.jobs.ignore(uid, series.StudyInstanceUID, reason, only_new=only_new)
                JOBS.labels("none", "ignored").inc()
                log.info("series %s ignored: %s", uid, reason)
                continue
            self.jobs.enqueue(
                uid, series.StudyInstanceUID, task, only_new=only_new, detail=reason, again=again
            )
            JOBS.labels(task, "queued").inc()
            log.info("series %s queued for %s (%s)", uid, task, reason)
            for rival in settled.withdraw:  # a rival claimed meanwhile is left alone
                if self.jobs.ignore_queued(rival, settled.reason):
                    JOBS.labels(task, "ignored").inc()
                    log.info("series %s ignored: %s", rival, settled.reason)
        if series_uids:
            self._wake.set()

    def run_once(self) -> bool:
        """Claim and run one queued job; False when the queue is empty."""
        job = self.jobs.claim()
        if job is None:
            return False
        if job.attempts > 1:
            log.info("job %d claimed, attempt %d", job.id, job.attempts)
        with self._held_lock:
            self._held[job.id] = job
        try:
            self._run(job)
        finally:
            with self._held_lock:
                self._held.pop(job.id, None)
        return True

    def _run(self, job: JobRecord) -> None:
        """A job in three steps: analyse (the task and those it needs), build and write its
        objects, report. A failure in a step fails or ignores the job with its reason; a
        fault of ours is caught here, never ends the worker, and names the step."""
        task = job.task or "none"
        started = time.perf_counter()
        step = "analysis"
        try:
            outcome, paths = self._analyse(job, task)
            step = "result objects"
            version = self._version(job, outcome.model.card.version) if self.destinations else None
            staged = self._write_objects(job, outcome.analysed, version) if version else []
        except NotAnalysableError as e:
            self._not_analysable(job, task, str(e))
            return
        except CardiogateError as e:
            self._fail(job, task, str(e))
            return
        except Exception:  # the guard: a bug fails this job, never the worker
            log.exception("job %d (%s) failed unexpectedly in its %s", job.id, task, step)
            self._fail(
                job,
                task,
                f"internal error in the {step} step: a fault of cardiogate, not of the series; "
                f"the service log has the details of job {job.id}",
            )
            return
        if self._report(job, outcome, staged, version, started):
            self._shadow(job, outcome, paths)

    def _analyse(self, job: JobRecord, task: str) -> tuple[Outcome, list[Path]]:
        """Step 1: the tasks ``task`` needs, in order, then ``task`` itself, each with its
        model, on the series' instances in the spool (returned too, for a candidate model
        in shadow)."""
        if task not in self.tasks:
            raise CardiogateError(
                f"task {task} is not installed (installed: {', '.join(self.tasks) or 'none'})"
            )
        paths = [self.spool.absolute(p) for p in self.store.instance_paths(job.SeriesInstanceUID)]
        return self.tasks.analyse(task, paths, self.engine.get), paths

    def _report(
        self,
        job: JobRecord,
        outcome: Outcome,
        staged: list[StagedObject],
        version: _Version | None,
        started: float,
    ) -> bool:
        """Step 3: the result, its review selection (:mod:`cardiogate.learning.selection`)
        and (with destinations) its staged objects committed in one transaction; the
        metrics and the log line. False when the job was not reported."""
        task, model, result = outcome.task.name, outcome.model, outcome.analysed.result
        chosen = selection.decide(
            self.settings.review_strategy,
            review_reason=outcome.task.review_reason(result.model_dump(mode="json")),
            key=job.SeriesInstanceUID,
            selected_today=selection.selected_today(self.store, utcnow(), job.id),
        )

        def also(conn: Connection) -> None:  # why it was selected, with its result
            selection.record_criterion(conn, job.id, chosen.criterion)
            if staged and version:
                self._stage(conn, job=job, staged=staged, version=version)

        reported = self.jobs.finish(
            job,
            result.model_dump_json(),
            model.card.name,
            model.card.version,
            model.provider,
            review_reason=chosen.reason,
            also=also,
            warnings=version.warnings if version else (),
        )
        if not reported:
            log.info(
                "job %d was queued again or taken over while it ran; its result is dropped",
                job.id,
            )
            return False
        selection.count(task, chosen)
        if staged and self.on_reported is not None:
            self.on_reported()
        elapsed = time.perf_counter() - started
        JOBS.labels(task, "reported").inc()
        JOB_SECONDS.labels(task).observe(elapsed)
        log.info(
            "job %d: %s of series %s reported in %.2f s",
            job.id,
            task,
            job.SeriesInstanceUID,
            elapsed,
        )
        received = self.jobs.first_received_at(job.SeriesInstanceUID)
        if received is not None:
            JOB_TO_REPORT.labels(task).observe(max(0.0, (utcnow() - received).total_seconds()))
        return True

    def _shadow(self, job: JobRecord, outcome: Outcome, paths: list[Path]) -> None:
        """The candidate model of the job's task, if one is loaded, on the same input:
        stored and compared, never sent (:mod:`cardiogate.learning.shadow`). The job is
        reported already, so its claim is no longer renewed."""
        try:
            candidate = self.engine.candidate(outcome.task.name)
            if candidate is None:
                return
            with self._held_lock:
                self._held.pop(job.id, None)
            shadow_and_select(
                self.store, self.settings.review_strategy, candidate, job, outcome, paths
            )
        except Exception:  # the guard: shadow mode never fails a reported job or the worker
            log.exception("job %d: shadow mode failed; the job stays reported", job.id)

    def _version(self, job: JobRecord, model_version: str) -> _Version:
        """The report version this run builds: the latest one again when its input and
        model are unchanged (a rebuild gives the same UIDs), else the next one, naming the
        latest one's SR as its predecessor."""
        digest = self.store.input_digest(job.SeriesInstanceUID)
        latest = latest_version(self.store, job.id)
        if latest is None:
            return _Version(0, digest, model_version, None)
        if latest.input_digest == digest and latest.model_version == model_version:
            previous = latest_version_before(self.store, job.id, latest.version_index)
            return _Version(latest.version_index, digest, model_version, previous)
        return _Version(latest.version_index + 1, digest, model_version, latest)

    def _write_objects(
        self, job: JobRecord, analysed: Analysed, version: _Version
    ) -> list[StagedObject]:
        predecessor = None
        if version.predecessor is not None:
            study, series, sop, sop_class = version.predecessor.sr_uids
            predecessor = Predecessor(study, series, sop, sop_class)
        try:
            objects = analysed.objects(
                version_index=version.index, predecessor=predecessor, warnings=version.warnings
            )
        except CardiogateError as e:
            raise CardiogateError(f"result objects not built: {e}") from e
        srs = [o for o in objects if str(o.SOPClassUID) in SR_STORAGE]
        if not srs:
            raise CardiogateError("result objects not built: no SR among them")
        version.sr_uids = (
            str(srs[0].StudyInstanceUID),
            str(srs[0].SeriesInstanceUID),
            str(srs[0].SOPInstanceUID),
            str(srs[0].SOPClassUID),
        )
        return self.outbox_files.write(job.id, objects)

    def _stage(
        self, conn: Connection, *, job: JobRecord, staged: list[StagedObject], version: _Version
    ) -> None:
        stage(conn, job.id, staged, self.destinations, replica_id=self.store.replica.id)
        if version.sr_uids is None:  # _write_objects sets them for every version it writes
            raise CardiogateError("result objects not staged: no SR recorded for this version")
        record_version(
            conn, job.id, version.index, version.digest, version.model_version, version.sr_uids
        )

    def _recover_outbox(self) -> None:
        """Stage what a restart finds unstaged: rows for a newly configured destination,
        and a re-run of reported jobs with no rows or with an object file missing."""
        if not self.destinations:
            return
        for name in self.destinations:
            added = self.outbox.add_destination(name)
            if added:
                log.warning("outbox: %d object(s) of reported jobs staged for %s", added, name)
        rerun = set(self.outbox.unstaged_reported_jobs())
        rerun |= {j for j, p in self.outbox.pending_paths() if not self.outbox_files.exists(p)}
        requeued = self.jobs.requeue(sorted(rerun))
        if requeued:
            log.warning("outbox: re-queued %d reported job(s) to rebuild their objects", requeued)

    def _fail(self, job: JobRecord, task: str, reason: str) -> None:
        if not self.jobs.fail(job, reason):
            log.info("job %d was queued again or taken over while it ran", job.id)
            return
        JOBS.labels(task, "failed").inc()
        log.warning(
            "job %d (%s) of series %s failed: %s", job.id, task, job.SeriesInstanceUID, reason
        )

    def _not_analysable(self, job: JobRecord, task: str, reason: str) -> None:
        if not self.jobs.not_analysable(job, reason):
            log.info("job %d was queued again or taken over while it ran", job.id)
            return
        JOBS.labels(task, "ignored").inc()
        log.info(
            "job %d (%s) of series %s ignored: %s", job.id, task, job.SeriesInstanceUID, reason
        )
        if task in self.tasks and self.tasks[task].one_per_study:  # the study's other series
            study = self.store.series_of_study_with_jobs(job.StudyInstanceUID)
            passed = reconstructions.passed_over(self.tasks[task], job.SeriesInstanceUID, study)
            if passed:
                log.info("job %d: routing %d passed-over series again", job.id, len(passed))
                self.route_completed(
                    passed, again=f"the series chosen instead was not analysable: {reason}"
                )

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_once():
                    continue
            except CardiogateError as e:  # the store itself is unreachable: wait and retry
                log.error("job worker could not reach the store: %s", e)
            self._wake.wait(1.0)
            self._wake.clear()

    def _heartbeat(self) -> None:
        """Renew the claims of the jobs in progress, a few times per lease."""
        interval = self.settings.job_lease_seconds / 3
        while not self._stop.wait(interval):
            with self._held_lock:
                held = list(self._held.values())
            try:
                renewed = self.jobs.renew(held)
            except CardiogateError as e:
                log.error("could not renew the claims of running jobs: %s", e)
                continue
            for job in held:
                if job.id not in renewed:
                    log.warning("job %d: its claim was lost (re-queued or taken over)", job.id)
                    with self._held_lock:
                        self._held.pop(job.id, None)

    @property
    def running(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def start(self) -> None:
        requeued = self.jobs.requeue_interrupted()
        if requeued:
            log.warning("re-queued %d job(s) interrupted by a restart", requeued)
        self.outbox_files.prepare()
        self._recover_outbox()
        publish_learning_metrics(self.store, self.tasks)
        self.route_completed(self.jobs.unrouted_complete_series(), only_new=True)
        for i in range(self.settings.worker_threads):
            thread = threading.Thread(target=self._loop, name=f"job-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        heartbeat = threading.Thread(target=self._heartbeat, name="job-heartbeat", daemon=True)
        heartbeat.start()
        self._threads.append(heartbeat)

    def stop(self) -> None:
        """Stop after the jobs in progress finish (their rows stay consistent either way)."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join()
