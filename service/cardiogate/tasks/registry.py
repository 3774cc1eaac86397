"""The installed tasks: every :class:`~.contract.Task` of the ``cardiogate.tasks`` entry-point
group (``[project.entry-points."cardiogate.tasks"]`` in a wheel's pyproject), configured from
the settings. cardiogate's own calcium and stenosis tasks are found the same way as a
hospital's, so a task shipped as its own wheel needs no change to cardiogate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cache, partial
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from cardiogate.errors import ConfigurationError
from cardiogate.tasks.contract import ENTRY_POINT_GROUP, Outcome, Task

if TYPE_CHECKING:
    from pathlib import Path

    from cardiogate.config import Settings
    from cardiogate.inference import LoadedModel

log = logging.getLogger(__name__)


@cache
def task_classes() -> tuple[type[Task], ...]:
    """The installed task classes, in routing order (priority, then name)."""
    found: dict[str, type[Task]] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = point.load()
        except Exception as e:  # a broken plug-in must not stop the service
            log.error("task plug-in %s (%s) does not load: %s", point.name, point.value, e)
            continue
        if not (isinstance(loaded, type) and issubclass(loaded, Task)):
            log.error("task plug-in %s (%s) is not a Task subclass", point.name, point.value)
            continue
        if loaded.name != point.name:
            log.error(
                "task plug-in %s (%s) calls itself %r: the entry point must be its name",
                point.name,
                point.value,
                loaded.name,
            )
            continue
        found.setdefault(loaded.name, loaded)
    return tuple(sorted(found.values(), key=lambda cls: (cls.priority, cls.name)))


class Tasks(Mapping[str, Task]):
    """The configured tasks by name, iterated in routing order."""

    def __init__(self, tasks: Iterable[Task]) -> None:
        self._tasks = {task.name: task for task in tasks}
        for task in self._tasks.values():
            missing = [need for need in task.needs if need not in self._tasks]
            if missing:
                raise ConfigurationError(
                    f"task {task.name} needs task(s) {', '.join(missing)}, which are not installed"
                )

    def __getitem__(self, name: str) -> Task:
        return self._tasks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def analyse(
        self, name: str, paths: Sequence[Path], model_for: Callable[[str], LoadedModel]
    ) -> Outcome:
        """Run the tasks ``name`` needs, in order, then ``name`` itself on ``paths``, each
        with its model (``model_for(task name)``) and the results of those before it."""
        results: dict[str, BaseModel] = {}
        outcome: Outcome | None = None
        for task in self.in_order(name):
            model = model_for(task.name)
            outcome = Outcome(task, model, task.analyse(paths, model, results), dict(results))
            results[task.name] = outcome.analysed.result
        if outcome is None:  # in_order always ends with the task itself
            raise ConfigurationError(f"task {name} ran nothing")
        return outcome

    def in_order(self, name: str) -> list[Task]:
        """``name``'s needed tasks (depth first, each once), then ``name`` itself."""
        ordered: list[Task] = []

        def visit(task: Task, path: tuple[str, ...]) -> None:
            if task.name in path:
                raise ConfigurationError(f"tasks need each other in a cycle: {' -> '.join(path)}")
            for need in task.needs:
                visit(self[need], (*path, task.name))
            if task not in ordered:
                ordered.append(task)

        visit(self[name], ())
        return ordered


def _routing_for(name: str, routing: Mapping[str, Any]) -> dict[str, Any]:
    prefix = f"{name}_"
    return {
        key.removeprefix(prefix): value for key, value in routing.items() if key.startswith(prefix)
    }


def _env_name(prefix: str, key: str) -> str:
    return f"CARDIOGATE_{(prefix + key).upper()}"


def _routing_name(prefix: str, key: str) -> str:
    return f"CARDIOGATE_ROUTING {prefix}{key}"


def _problems(error: ValidationError, name: Callable[[str], str]) -> str:
    """Each invalid setting by the name an operator sets it with, and what is wrong."""
    return "; ".join(
        f"{name('_'.join(str(p) for p in err['loc']) or 'value')}: {err['msg']}"
        for err in error.errors()
    )


def load_tasks(settings: Settings) -> Tasks:
    """Every installed task, configured from ``settings`` (``tasks`` and ``routing``)."""
    return configure_tasks(settings.tasks, settings.routing)


def configure_tasks(
    options: Mapping[str, Mapping[str, Any]] | None = None,
    routing: Mapping[str, Any] | None = None,
) -> Tasks:
    """Every installed task with its settings (``options`` by task name, over the
    environment's ``CARDIOGATE_<TASK>_*``) and routing rules (``<task>_<rule>`` keys).

    Raises
    ------
    ConfigurationError
        For a routing key or task settings that no installed task takes, or invalid ones,
        naming the key.
    """
    options, routing = options or {}, routing or {}
    classes = task_classes()
    names = {cls.name for cls in classes}
    unknown = [key for key in routing if not any(key.startswith(f"{n}_") for n in names)]
    if unknown:
        raise ConfigurationError(
            f"CARDIOGATE_ROUTING: {', '.join(sorted(unknown))} belong(s) to no installed task "
            f"(keys start with a task's name: {', '.join(sorted(names))})"
        )
    strangers = [name for name in options if name not in names]
    if strangers:
        raise ConfigurationError(
            f"CARDIOGATE_TASKS names task(s) not installed: {', '.join(sorted(strangers))}"
        )
    tasks = []
    for cls in classes:
        prefix = f"{cls.name}_"
        try:
            settings = cls.settings_model(**options.get(cls.name, {}))
        except ValidationError as e:
            problems = _problems(e, partial(_env_name, prefix))
            raise ConfigurationError(f"task {cls.name}: {problems}") from e
        try:
            rules = cls.routing_model.model_validate(_routing_for(cls.name, routing))
        except ValidationError as e:
            problems = _problems(e, partial(_routing_name, prefix))
            raise ConfigurationError(f"task {cls.name}: {problems}") from e
        tasks.append(cls(settings, rules))
    return Tasks(tasks)


def default_tasks(settings: Settings | None) -> Tasks:
    """The installed tasks configured from ``settings``, or with their defaults."""
    return configure_tasks() if settings is None else load_tasks(settings)
