"""Clinical tasks: the contract (:mod:`.contract`) and the installed tasks (:mod:`.registry`).
cardiogate's own are :mod:`.calcium` and :mod:`.stenosis`; a hospital's ship as wheels with a
``cardiogate.tasks`` entry point."""

from cardiogate.tasks.contract import (
    ENTRY_POINT_GROUP,
    Analysed,
    DemoCase,
    NoOptions,
    Outcome,
    OutputSeries,
    Route,
    Task,
)
from cardiogate.tasks.registry import (
    Tasks,
    configure_tasks,
    default_tasks,
    load_tasks,
    task_classes,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Analysed",
    "DemoCase",
    "NoOptions",
    "Outcome",
    "OutputSeries",
    "Route",
    "Task",
    "Tasks",
    "configure_tasks",
    "default_tasks",
    "load_tasks",
    "task_classes",
]
