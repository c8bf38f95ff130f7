"""Run a stage's tasks in local worker processes with a progress bar (or inline with one worker)."""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os

import tqdm

from lmjax.data.web.tasks import Task, TasksFailed, pending, run_task


def run_local(stage: str, tasks: list[Task], workers: int | None = None) -> None:
  """Run the pending tasks on `workers` processes (default: all cores); raise TasksFailed at the end if any failed."""
  todo = pending(tasks)
  workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
  errors = []
  with tqdm.tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=stage, unit="task", leave=True) as bar:
    if workers == 1:
      for task in todo:
        errors.append(run_task(task))
        bar.update()
    else:
        # spawn, not fork: the parent may have imported JAX, whose threads do not survive a fork
      context = multiprocessing.get_context("spawn")
      with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        for error in pool.map(run_task, todo):
          errors.append(error)
          bar.update()
  failures = [error for error in errors if error]
  if failures:
    raise TasksFailed(f"{len(failures)} of {len(tasks)} {stage} tasks failed (finished ones are kept; rerun the "
                      "same command to retry only the failed ones). First failure:\n" + failures[0])
