"""The Task contract: everything the rest of cardiogate knows about a clinical analysis.

A task (coronary calcium, stenosis, or one a hospital ships as its own wheel) is a subclass
of :class:`Task` found through the ``cardiogate.tasks`` entry-point group
(:mod:`.registry`). The worker, router, API, status page, review queue, offline analyser,
metrics and demo call only what is here; none of them names a task. Per series:

1. **route** — :meth:`Task.route` says whether a complete series is the task's kind
   (``None``: not mine), and if so whether it is analysed (``Route(name, reason)``) or not
   (``Route(None, reason)``, the reason an operator reads). A task that analyses one series
   per study (several reconstructions of one acquisition) says so with ``one_per_study``
   and ranks the candidates with :meth:`Task.preference`.
2. **analyse** — :meth:`Task.analyse` loads and checks the series from the spool, runs its
   model and returns an :class:`Analysed`: the typed result (a pydantic model, ``task``
   field first) and how to build its DICOM objects. Bad input raises
   :class:`~cardiogate.errors.CardiogateError` (the job fails with that reason) or
   :class:`~cardiogate.errors.NotAnalysableError` (the series is valid but not for this
   task: ignored). A task may need another task's result for the same series (``needs``):
   those run first, in order, and their results are passed in.
3. **report** — ``Analysed.objects(version_index=..., predecessor=..., warnings=...)``
   builds the SR (first) and any SEG, key images and summary page, with the shared blocks
   of :mod:`cardiogate.reports`.
4. **show** — :meth:`Task.summary`, :meth:`Task.lesion_lines`, :meth:`Task.review_reason`,
   :meth:`Task.review_summary` and :meth:`Task.report_lines` turn a stored result (JSON)
   into what the API, the status page, the review queue and ``cardiogate analyze`` show;
   :meth:`Task.demo_case` and its companions give ``cardiogate demo`` a phantom series.
5. **learn** — :attr:`Task.correction_model`, :meth:`Task.review_labels` and
   :meth:`Task.correction_problem` say what a reviewer may correct and what a review
   asserts (:mod:`cardiogate.learning`); :meth:`Task.compare` compares a candidate model's
   result with the serving one's in shadow mode.

A task's settings come from its own environment prefix (``CARDIOGATE_<NAME>_``, e.g.
``CARDIOGATE_CALCIUM_THRESHOLD_HU``) or ``CARDIOGATE_TASKS`` (``{"calcium": {...}}``); its
routing rules are the ``<name>_`` keys of ``CARDIOGATE_ROUTING``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict
from pydicom.dataset import Dataset

from cardiogate.learning.labels import Label
from cardiogate.store.records import SeriesAttributes, StudySeries

if TYPE_CHECKING:
    from cardiogate.inference import LoadedModel
    from cardiogate.reports.common import Predecessor

ENTRY_POINT_GROUP = "cardiogate.tasks"


@dataclass(frozen=True, slots=True)
class Route:
    """A routing decision: ``task`` None means not analysed, for ``reason``."""

    task: str | None
    reason: str  # why: for an analysed series, the rule that matched


class ObjectBuilder(Protocol):
    """Builds the DICOM objects that report a result: one SR among them (recorded as the
    report's version), each object after those it references so that a PACS stores them in
    order. It is given the report's ``version_index`` (0, 1, ... as the input or model
    changes), the ``predecessor`` SR it replaces, and a ``warnings`` list it appends the
    repairs of source headers to."""

    def __call__(
        self,
        *,
        version_index: int = 0,
        predecessor: Predecessor | None = None,
        warnings: list[str] | None = None,
    ) -> list[Dataset]: ...


@dataclass(frozen=True)
class Analysed:
    """A task's result, and how to build the DICOM objects that report it (called only
    when there is somewhere to send them)."""

    result: BaseModel
    objects: ObjectBuilder


@dataclass(frozen=True)
class Outcome:
    """A task's run on a series: the task, the model it ran, what it returned and the
    results of the tasks it needed (which a candidate model in shadow is given too)."""

    task: Task
    model: LoadedModel
    analysed: Analysed
    needed: Mapping[str, BaseModel] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """A candidate model's result beside the serving one's on the same series (shadow
    mode): ``agree`` when the clinically relevant call is the same, ``difference`` the
    task's measures of how far apart they are (candidate minus serving, by name), and
    ``summary`` one line an operator reads."""

    agree: bool
    difference: dict[str, float]
    summary: str

    def as_dict(self) -> dict[str, Any]:
        return {"agree": self.agree, "difference": dict(self.difference), "summary": self.summary}


# What differs between two runs of the same model on the same input, or names the model
_RUN_KEYS = frozenset({"timings_s", "model"})


@dataclass(frozen=True)
class OutputSeries:
    """A series of result objects: its SeriesNumber and SeriesDescription."""

    number: int
    description: str


@dataclass(frozen=True)
class DemoCase:
    """A synthetic series for the demo: what it is called, its instances, its truth."""

    label: str
    datasets: list[Dataset]
    truth: dict[str, Any]


class NoOptions(BaseModel):
    """Settings or routing rules of a task that has none."""

    model_config = ConfigDict(extra="forbid")


class NoCorrections(BaseModel):
    """The corrections of a task whose reviewers can only agree or disagree."""

    model_config = ConfigDict(extra="forbid")


class Task(ABC):
    """One clinical analysis. Subclasses set the class attributes and implement the
    abstract methods; the defaults of the others suit a task without review rules."""

    name: ClassVar[str]  # lower case, also the model card's ``task``
    title: ClassVar[str]  # "coronary artery calcium score", for messages and pages
    result_model: ClassVar[type[BaseModel]]
    settings_model: ClassVar[type[BaseModel]] = NoOptions
    routing_model: ClassVar[type[BaseModel]] = NoOptions
    output_series: ClassVar[Mapping[str, OutputSeries]] = {}  # "sr", "seg", "key", "summary"
    one_per_study: ClassVar[bool] = False
    needs: ClassVar[tuple[str, ...]] = ()
    priority: ClassVar[int] = 100  # lower routes first when two tasks take a series
    correction_model: ClassVar[type[BaseModel]] = NoCorrections  # a review's corrections
    added_match_distance: ClassVar[float] = 5.0  # pixels: added items this close are one

    def __init__(self, settings: BaseModel | None = None, routing: BaseModel | None = None):
        self.settings = settings if settings is not None else self.settings_model()
        self.routing = routing if routing is not None else self.routing_model()

    # -- routing ---------------------------------------------------------------------

    @abstractmethod
    def route(self, series: SeriesAttributes) -> Route | None:
        """None when the series is not this task's kind; else whether it is analysed."""

    def preference(self, series: StudySeries) -> tuple[Any, ...]:
        """With ``one_per_study``: the sort key among a study's candidates, lowest scored."""
        raise NotImplementedError(f"task {self.name} does not choose one series per study")

    def chosen_reason(self, chosen: StudySeries) -> str:
        """With ``one_per_study``: what the candidates not chosen are told."""
        return f"another series of this study is analysed: {chosen.attributes.SeriesInstanceUID}"

    # -- analysis --------------------------------------------------------------------

    @abstractmethod
    def analyse(
        self, paths: Sequence[Path], model: LoadedModel, needed: Mapping[str, BaseModel]
    ) -> Analysed:
        """Load, check and analyse one series; ``needed`` holds the results of ``needs``."""

    # -- what people see ---------------------------------------------------------------

    @abstractmethod
    def summary(self, result: Mapping[str, Any]) -> str:
        """One line for the status page and the job list."""

    def lesion_lines(self, result: Mapping[str, Any]) -> list[str]:
        """One line per finding, most important first (the status page shows a few)."""
        return []

    def review_reason(self, result: Mapping[str, Any]) -> str | None:
        """Why the result needs a reviewer, or None: by default the analysis's own
        ``needs_review`` and ``review_reason``."""
        if not result.get("needs_review"):
            return None
        return str(result.get("review_reason") or "flagged for review by the analysis")

    def review_summary(self, result: Mapping[str, Any]) -> dict[str, Any]:
        """What the review queue shows of a result (no identifiers)."""
        return {}

    def report_lines(self, result: Mapping[str, Any]) -> list[str]:
        """``cardiogate analyze``'s lines for a result (indented by the caller)."""
        return [self.summary(result)]

    # -- shadow mode -------------------------------------------------------------------

    def compare(self, serving: Mapping[str, Any], candidate: Mapping[str, Any]) -> Comparison:
        """How a candidate model's result (JSON) compares with the serving model's on the
        same series. Default: they agree when equal but for their timings and model."""
        same = {k: v for k, v in serving.items() if k not in _RUN_KEYS} == {
            k: v for k, v in candidate.items() if k not in _RUN_KEYS
        }
        return Comparison(same, {}, "same result" if same else "results differ")

    # -- review ------------------------------------------------------------------------

    def review_labels(
        self, result: Mapping[str, Any], corrections: BaseModel | None
    ) -> list[Label]:
        """What one review asserts (:mod:`cardiogate.learning.labels`): the model's own
        labels of every finding of ``result`` with the reviewer's ``corrections`` (an
        instance of ``correction_model``) applied. Without corrections, the model's labels:
        a disagree without corrections asserts nothing beyond its verdict. Default: none."""
        return []

    def correction_problem(self, result: Mapping[str, Any], corrections: BaseModel) -> str | None:
        """Why valid ``corrections`` do not fit ``result`` (a lesion it does not have),
        naming the field; None when they fit."""
        return None

    # -- the demo ------------------------------------------------------------------------

    def demo_case(self) -> DemoCase | None:
        """A synthetic series of this task's kind with its truth, from the phantom package,
        for ``cardiogate demo``; None when the task has no demo data."""
        return None

    def demo_summary(self, result: Mapping[str, Any], truth: Mapping[str, Any]) -> dict[str, Any]:
        """What the demo reports of a result beside the phantom's truth (JSON)."""
        return {}

    def demo_lines(self, summary: Mapping[str, Any]) -> list[str]:
        """:meth:`demo_summary` as the human reads it."""
        return []
