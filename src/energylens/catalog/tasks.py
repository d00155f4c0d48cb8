"""Per-task request properties (mean prompt length, visual tokens) that benchmarks do not record per row."""
from __future__ import annotations

import tomllib
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def _tasks() -> dict:
    return tomllib.loads(resources.files("energylens.catalog").joinpath("data/tasks.toml").read_text(encoding="utf-8"))


def task_defaults(task: str) -> dict | None:
    """Assumed request properties of a benchmark task (a copy), or None when the task is unknown."""
    found = _tasks().get(task) if isinstance(task, str) else None
    return dict(found) if isinstance(found, dict) else None


def task_names() -> list[str]:
    return list(_tasks())
