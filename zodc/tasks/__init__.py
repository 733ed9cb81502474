"""Tasks: what differs between classification and survival (:mod:`zodc.tasks.base` has the protocol)."""

from __future__ import annotations

from typing import Any

from zodc.tasks.base import Problem, Task
from zodc.tasks.classification import Classification
from zodc.tasks.survival import Survival, is_structured

TASKS: dict[str, Task] = {"classification": Classification(), "survival": Survival()}


def get_task(name: str) -> Task:
    return TASKS[name]


def infer_task(y: Any, duration_col: Any, event_col: Any, schema: Any) -> Task:
    """The task of a fit's arguments — the one place it is decided: survival when survival columns
    are named, ``y`` is a structured ``(event, time)`` array, or there is no ``y`` and the schema is
    a survival schema; classification otherwise."""
    survival = (duration_col is not None or event_col is not None or is_structured(y)
                or (y is None and schema is not None and schema.task == "survival"))
    return TASKS["survival" if survival else "classification"]


__all__ = ["Classification", "Problem", "Survival", "TASKS", "Task", "get_task", "infer_task"]
