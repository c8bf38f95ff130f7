"""A task: one picklable call that writes its outputs and then its `.done` marker (see shards.py).

Executors run the pending tasks of a stage; a task whose marker exists is skipped, so a rerun
redoes only what failed or never finished.
"""
from __future__ import annotations

import dataclasses
import traceback
from typing import Any, Callable

from lmjax.config import UserError
from lmjax.data.web import shards


@dataclasses.dataclass(frozen=True)
class Task:
  name: str  # shown in progress and errors, e.g. "filter 3/8"
  output: str  # the output whose marker (<stem>.done beside it) says the task is finished
  fn: Callable[..., None]  # a module-level function (picklable for worker processes and Ray)
  kwargs: dict[str, Any]


def pending(tasks: list[Task]) -> list[Task]:
  return [task for task in tasks if not shards.is_done(task.output)]


def run_task(task: Task) -> str | None:
  """Run one task; returns None on success, else the error (with its traceback unless a UserError); never
  raises."""
  try:
    task.fn(**task.kwargs)
    return None
  except UserError as error:  # a bad input or setting: its message names it and the fix, a traceback would not
    return f"{task.name}: {error}"
  except Exception:  # reported by the executor after the stage; other tasks go on
    return f"{task.name}: {traceback.format_exc()}"


class TasksFailed(UserError, RuntimeError):
  """Some tasks of a stage failed; finished ones keep their markers, so a rerun redoes only these."""
