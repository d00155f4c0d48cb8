"""Per-task request properties (mean prompt length, visual tokens) that benchmarks do not record per row."""
from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def _tasks() -> dict:
    return tomllib.loads(resources.files("energylens.catalog").joinpath("data/tasks.toml").read_text())


def task_defaults(task: str) -> dict | None:
    """Assumed request properties of a benchmark task, or None when the task is unknown."""
    return _tasks().get(task)


def task_names() -> list[str]:
    return list(_tasks())
