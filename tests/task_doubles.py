"""A task whose analysis is a function of the test's: for worker tests that exercise the
job lifecycle (claims, leases, outbox) rather than an analysis."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cardiogate.store.records import SeriesAttributes
from cardiogate.tasks import Analysed, Route, Task, Tasks

Analysis = Callable[[Sequence[Path], Any, Mapping[str, BaseModel]], Analysed]


def function_task(name: str, analysis: Analysis) -> Task:
    """A task called ``name`` that takes no series by routing and analyses with ``analysis``."""

    class FunctionTask(Task):
        title = f"{name} (test double)"
        result_model = BaseModel

        def route(self, series: SeriesAttributes) -> Route | None:
            return None

        def analyse(
            self, paths: Sequence[Path], model: Any, needed: Mapping[str, BaseModel]
        ) -> Analysed:
            return analysis(paths, model, needed)

        def summary(self, result: Mapping[str, Any]) -> str:
            return f"{name} result"

    FunctionTask.name = name
    return FunctionTask()


def tasks_of(**analyses: Analysis) -> Tasks:
    """Tasks named by the keywords, each analysing with its function."""
    return Tasks(function_task(name, analysis) for name, analysis in analyses.items())
