"""Every Prometheus metric of the service, defined once.

Label values are bounded enumerations (modality, outcome, status, state, task), never UIDs
or anything taken from a patient. Listener processes other than the main one report through
:class:`QueueIngestSink`; the main process drains that queue into these metrics, so one
``/metrics`` endpoint sees every process. The metric catalogue in docs/monitoring.md lists
them all (a test keeps the two in step).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric

from cardiogate import __version__
from cardiogate.errors import CardiogateError
from cardiogate.store.jobs import STATES

log = logging.getLogger(__name__)

BUILD_INFO = Info("cardiogate_build", "Version of the running service")
BUILD_INFO.info({"version": __version__})

ASSOCIATIONS = Counter(
    "cardiogate_associations_total",
    "DICOM associations requested of the SCP, by outcome",
    ["outcome"],
)
ACTIVE_ASSOCIATIONS = Gauge(
    "cardiogate_associations_active", "DICOM associations open now, all listener processes"
)
INSTANCES_RECEIVED = Counter(
    "cardiogate_instances_received_total",
    "C-STORE requests handled, by modality and outcome",
    ["modality", "status"],
)
BYTES_RECEIVED = Counter(
    "cardiogate_received_bytes_total", "Bytes of DICOM data sets received by C-STORE"
)
CSTORE_SECONDS = Histogram(
    "cardiogate_cstore_handling_seconds",
    "Time from a complete C-STORE request to its response (parse, spool, fsync, commit)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
SERIES_COMPLETED = Counter(
    "cardiogate_series_completed_total", "Series judged complete after the quiet period"
)
JOBS = Counter(
    "cardiogate_jobs_total",
    "Series routed and jobs finished, by task and outcome (queued, ignored, reported, failed)",
    ["task", "outcome"],
)
JOB_SECONDS = Histogram(
    "cardiogate_job_seconds",
    "Time to run one analysis job (load, model, scoring), by task",
    ["task"],
    buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0),
)
INFERENCE_SECONDS = Histogram(
    "cardiogate_inference_seconds",
    "Time of one model run, by model and execution provider",
    ["model", "provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
MODEL_INFO = Gauge(
    "cardiogate_model_info",
    "Loaded models (value 1), with version, task and the execution provider in use",
    ["model", "version", "task", "provider"],
)
SPOOL_FREE_BYTES = Gauge("cardiogate_spool_free_bytes", "Free bytes on the spool's filesystem")
DELIVERY_OBJECTS = Counter(
    "cardiogate_delivery_objects_total",
    "Result objects offered to a destination by C-STORE, by outcome (sent, failed, dead)",
    ["destination", "outcome"],
)
DELIVERY_RETRIES = Counter(
    "cardiogate_delivery_retries_total",
    "Deliveries scheduled for another attempt after a failure, by destination",
    ["destination"],
)
DELIVERY_OLDEST_PENDING = Gauge(
    "cardiogate_delivery_oldest_pending_seconds",
    "Age of the oldest result object still waiting in the outbox (0 when none)",
)
DELIVERY_DEAD_LETTERS = Gauge(
    "cardiogate_delivery_dead_letters",
    "Result objects that exhausted their delivery attempts (dead letters in the outbox)",
)
DELIVERY_PENDING = Gauge(
    "cardiogate_delivery_pending",
    "Result objects waiting in the outbox for a destination (all destinations)",
)
READY = Gauge(
    "cardiogate_ready", "1 when every readiness check passes (/readyz answers 200), else 0"
)

# From a series' first instance to its report: the quiet period, the queue and the analysis;
# to its delivery: also every destination's C-STOREs and their retries.
_TURNAROUND_BUCKETS = (5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)
JOB_TURNAROUND = Histogram(
    "cardiogate_job_turnaround_seconds",
    "Time from the first instance of a series received to every result object of its job "
    "stored by every destination (the job delivered), by task",
    ["task"],
    buckets=_TURNAROUND_BUCKETS,
)
JOB_TO_REPORT = Histogram(
    "cardiogate_job_received_to_reported_seconds",
    "Time from the first instance of a series received to its job reported (result stored, "
    "objects staged for delivery), by task",
    ["task"],
    buckets=_TURNAROUND_BUCKETS,
)

# Reviews by several reviewers (cardiogate.api.review): verdicts, settled cases, agreement.
REVIEWS = Counter(
    "cardiogate_reviews_total",
    "Verdicts recorded, by task, role (reviewer, adjudicator) and verdict (agree, disagree)",
    ["task", "role", "verdict"],
)
REVIEWS_SETTLED = Counter(
    "cardiogate_review_settled_total",
    "Results whose review settled, by task and whether the reviewers changed the result "
    "(changed: true, false)",
    ["task", "changed"],
)
REVIEW_KAPPA = Gauge(
    "cardiogate_review_agreement_kappa",
    "Mean Fleiss' kappa of the reviewers of the settled results with two or more reviews, "
    "by task, as of the last settled result",
    ["task"],
)

# The learning loop (cardiogate.learning): review selection, shadow mode, promotions.
REVIEW_SELECTED = Counter(
    "cardiogate_review_selected_total",
    "Results selected for review, by task and criterion (uncertainty, ood, "
    "shadow_disagreement, audit)",
    ["task", "criterion"],
)
REVIEW_OVER_BUDGET = Counter(
    "cardiogate_review_over_budget_total",
    "Results a criterion would have selected for review but the daily budget was spent, by "
    "task and that criterion",
    ["task", "criterion"],
)
REVIEW_YIELD = Gauge(
    "cardiogate_review_yield_ratio",
    "Of the settled reviews of results selected by a criterion, the share whose reviewers "
    "changed the result, by task and criterion",
    ["task", "criterion"],
)
SHADOW_RUNS = Counter(
    "cardiogate_shadow_runs_total",
    "Candidate model runs in shadow mode, by task and outcome (agree, disagree, failed)",
    ["task", "outcome"],
)
SHADOW_AGREEMENT = Gauge(
    "cardiogate_shadow_agreement_ratio",
    "Share of the stored shadow runs of a candidate model that agree with the serving "
    "model, by task and candidate version",
    ["task", "candidate_version"],
)
MODEL_PROMOTIONS = Counter(
    "cardiogate_model_promotions_total",
    "Model promotions and rollbacks recorded in the database, by task and action (promote, "
    "rollback); counted at start-up, since a change takes effect at restart",
    ["task", "action"],
)


class JobStateCollector:
    """``cardiogate_jobs_by_state{state}``: the jobs in the database by state, counted at
    scrape time (at most every ``max_age_seconds``) with one GROUP BY.

    One collector is registered at import; a running service points it at its store with
    :meth:`watch` and away again at stop, so building the service twice in one process
    registers nothing twice. Until then, or while the count fails, the family has no samples
    (the scrape itself never fails for it); every known state is reported, 0 when empty.
    """

    name = "cardiogate_jobs_by_state"
    documentation = (
        "Jobs in the database by state (queued, running, reported, delivered, failed, "
        "ignored); with a shared database every replica reports the same counts"
    )
    labelnames = ("state",)

    def __init__(
        self,
        states: Iterable[str],
        max_age_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.states = tuple(states)
        self.max_age_seconds = max_age_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._source: Callable[[], Mapping[str, int]] | None = None
        self._cached: tuple[float, Mapping[str, int]] | None = None

    def watch(self, source: Callable[[], Mapping[str, int]] | None) -> None:
        """Count with ``source`` from now on (None: report no samples)."""
        with self._lock:
            self._source, self._cached = source, None

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        counts = self._counts()
        if counts is not None:
            for state in self.states:
                family.add_metric([state], float(counts.get(state, 0)))
        return [family]

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def _counts(self) -> Mapping[str, int] | None:
        with self._lock:
            if self._source is None:
                return None
            now = self._clock()
            if self._cached is not None and now - self._cached[0] < self.max_age_seconds:
                return self._cached[1]
            try:
                counts = self._source()
            except CardiogateError as e:  # the store is unreachable: omit, never fail a scrape
                log.debug("jobs by state not counted: %s", e)
                self._cached = None
                return None
            self._cached = (now, counts)
            return counts


JOBS_BY_STATE = JobStateCollector(STATES)
REGISTRY.register(JOBS_BY_STATE)

ASSOCIATION_OUTCOMES = (
    "accepted",
    "rejected_calling_ae",
    "rejected_called_ae",
    "rejected_busy",
    "rejected_disk",
    "rejected_other",
    "aborted",
    "tls_failed",
)
INSTANCE_STATUSES = ("stored", "duplicate", "replaced", "cannot_understand", "out_of_resources")
KNOWN_MODALITIES = frozenset(
    ("CT", "MR", "XA", "XRF", "RF", "US", "NM", "PT", "CR", "DX", "MG", "OT")
    + ("SR", "SEG", "KO", "PR", "DOC", "IVOCT", "IVUS", "ECG", "HD", "RTSTRUCT")
)
for _outcome in ASSOCIATION_OUTCOMES:
    ASSOCIATIONS.labels(_outcome)


def modality_label(modality: str | None) -> str:
    """Bound the label's values: an unexpected modality string becomes ``other``."""
    if not modality:
        return "unknown"
    return modality if modality in KNOWN_MODALITIES else "other"


class IngestSink(Protocol):
    """Where the listener reports what happened; one call per event."""

    def association(self, outcome: str) -> None: ...

    def instance(self, modality: str | None, status: str, nbytes: int, seconds: float) -> None: ...


class PrometheusIngestSink:
    """Updates this process's metrics directly."""

    def association(self, outcome: str) -> None:
        ASSOCIATIONS.labels(outcome).inc()

    def instance(self, modality: str | None, status: str, nbytes: int, seconds: float) -> None:
        INSTANCES_RECEIVED.labels(modality_label(modality), status).inc()
        if status in ("stored", "replaced", "duplicate"):
            BYTES_RECEIVED.inc(nbytes)
        CSTORE_SECONDS.observe(seconds)


class QueueIngestSink:
    """Forwards events to the main process (used by extra listener processes)."""

    def __init__(self, q: Any) -> None:
        self._q = q

    def association(self, outcome: str) -> None:
        self._put(("association", outcome))

    def instance(self, modality: str | None, status: str, nbytes: int, seconds: float) -> None:
        self._put(("instance", modality, status, nbytes, seconds))

    def _put(self, item: tuple[Any, ...]) -> None:
        try:
            self._q.put_nowait(item)
        except queue.Full:  # metrics must never slow or fail ingest
            log.debug("metrics queue full; dropped one event")


def drain_forever(q: Any, sink: IngestSink, stop: threading.Event) -> None:
    """Apply events from listener processes to ``sink`` until ``stop`` is set."""
    handlers: dict[str, Callable[..., None]] = {
        "association": sink.association,
        "instance": sink.instance,
    }
    while not stop.is_set():
        try:
            kind, *args = q.get(timeout=0.5)
        except queue.Empty:
            continue
        except (EOFError, OSError):
            return
        handlers[kind](*args)
