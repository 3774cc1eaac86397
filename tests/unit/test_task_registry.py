"""The task registry: tasks found through the ``cardiogate.tasks`` entry-point group, a
broken plug-in skipped with a log line, needs run in order, and nothing outside a task's
package naming a task."""

from __future__ import annotations

import ast
import logging
from collections.abc import Iterator, Mapping, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from cardiogate.errors import ConfigurationError
from cardiogate.store.records import SeriesAttributes
from cardiogate.tasks import Analysed, Route, Task, Tasks, registry, task_classes

SERVICE = Path(__file__).resolve().parents[2] / "service" / "cardiogate"


class _Base(Task):
    title = "test task"
    result_model = BaseModel

    def route(self, series: SeriesAttributes) -> Route | None:
        return None

    def analyse(
        self, paths: Sequence[Path], model: Any, needed: Mapping[str, BaseModel]
    ) -> Analysed:
        raise NotImplementedError

    def summary(self, result: Mapping[str, Any]) -> str:
        return ""


class First(_Base):
    name = "first"


class Second(_Base):
    name = "second"
    needs = ("first",)


class Third(_Base):
    name = "third"
    needs = ("second", "first")


class Loop(_Base):
    name = "loop"
    needs = ("loop2",)


class Loop2(_Base):
    name = "loop2"
    needs = ("loop",)


def _point(name: str, target: str) -> EntryPoint:
    return EntryPoint(name=name, value=target, group="cardiogate.tasks")


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[EntryPoint]]:
    points: list[EntryPoint] = []
    monkeypatch.setattr(registry, "entry_points", lambda group: list(points))
    registry.task_classes.cache_clear()
    yield points
    registry.task_classes.cache_clear()


def test_cardiogate_finds_its_own_tasks_through_the_entry_point_group() -> None:
    names = [cls.name for cls in task_classes()]
    assert {"calcium", "stenosis"} <= set(names)
    assert names.index("stenosis") < names.index("calcium")  # angiograms were always first


def test_a_broken_plug_in_is_skipped_with_a_log_line_and_the_others_load(
    installed: list[EntryPoint], caplog: pytest.LogCaptureFixture
) -> None:
    installed += [
        _point("first", f"{__name__}:First"),
        _point("gone", "no_such_module_anywhere:Task"),
        _point("wrong", f"{__name__}:Second"),  # calls itself "second"
        _point("plain", "pathlib:Path"),  # not a Task
    ]
    with caplog.at_level(logging.ERROR, logger="cardiogate.tasks.registry"):
        assert [cls.name for cls in registry.task_classes()] == ["first"]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "task plug-in gone (no_such_module_anywhere:Task) does not load" in messages
    assert "calls itself 'second': the entry point must be its name" in messages
    assert "task plug-in plain (pathlib:Path) is not a Task subclass" in messages


def test_needs_run_first_in_order_each_once() -> None:
    tasks = Tasks([First(), Second(), Third()])
    assert [t.name for t in tasks.in_order("third")] == ["first", "second", "third"]
    assert [t.name for t in tasks.in_order("first")] == ["first"]
    with pytest.raises(ConfigurationError, match="cycle: loop -> loop2"):
        Tasks([Loop(), Loop2()]).in_order("loop")
    with pytest.raises(ConfigurationError, match="task second needs task\\(s\\) first"):
        Tasks([Second()])


def _names_a_task(path: Path, names: set[str]) -> list[str]:
    """The lines of ``path`` with a string constant that is exactly a task's name."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        f"{path.relative_to(SERVICE)}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and id(node) not in docstrings
        and isinstance(node.value, str)
        and node.value in names
    ]


def test_no_module_outside_a_task_package_names_a_task() -> None:
    names = {cls.name for cls in task_classes()}
    found: dict[str, list[str]] = {}
    for path in sorted(SERVICE.rglob("*.py")):
        inside = path.relative_to(SERVICE).parts
        if inside[0] == "tasks" and len(inside) > 2 and inside[1] in names:
            continue  # a task's own package may name itself
        lines = _names_a_task(path, names)
        if lines:
            found[str(path.relative_to(SERVICE))] = lines
    assert not found, found


class _Result(BaseModel):
    task: str


def test_analyse_runs_what_a_task_needs_first_and_hands_it_the_results() -> None:
    ran: list[tuple[str, list[str]]] = []

    def recording(name: str) -> type[Task]:
        class Recording(_Base):
            def analyse(
                self, paths: Sequence[Path], model: Any, needed: Mapping[str, BaseModel]
            ) -> Analysed:
                ran.append((self.name, sorted(needed)))
                return Analysed(_Result(task=self.name), lambda **_: [])

        Recording.name = name
        return Recording

    first, second = recording("first")(), recording("second")()
    second.needs = ("first",)  # type: ignore[misc]
    outcome = Tasks([first, second]).analyse("second", [], lambda name: f"model of {name}")
    assert ran == [("first", []), ("second", ["first"])]
    assert (outcome.task, outcome.model) == (second, "model of second")
    assert outcome.analysed.result == _Result(task="second")
