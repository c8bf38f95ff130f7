"""Run each stage's tasks on one pool of local worker processes (started once per run), with a progress bar."""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os

import tqdm

from lmjax.data.web.tasks import Task, TasksFailed, pending, run_task
from lmjax.data.workers import die_with_parent


class LocalExecutor:
  """`with LocalExecutor(workers) as executor: executor.run(stage, tasks)`; one worker runs tasks inline."""

  def __init__(self, workers: int | None = None):
    self.workers = max(1, workers or os.cpu_count() or 1)
    self._pool: concurrent.futures.ProcessPoolExecutor | None = None

  def __enter__(self) -> LocalExecutor:
    return self

  def __exit__(self, *exc_info) -> None:
    if self._pool is not None:
      self._pool.shutdown(cancel_futures=True)

  def run(self, stage: str, tasks: list[Task]) -> None:
    """Run the pending tasks; raise TasksFailed after the stage if any failed (the others keep their outputs)."""
    todo = pending(tasks)
    errors = []
    with tqdm.tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=stage, unit="task") as bar:
      if self.workers == 1 or len(todo) <= 1:
        for task in todo:
          errors.append(run_task(task))
          bar.update()
      else:
        if self._pool is None:
          # spawn, not fork: the parent may have imported JAX, whose threads do not survive a fork
          context = multiprocessing.get_context("spawn")
          self._pool = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=context,
                                                              initializer=die_with_parent, initargs=(os.getpid(),))
        for future in concurrent.futures.as_completed([self._pool.submit(run_task, task) for task in todo]):
          errors.append(future.result())
          bar.update()
    failures = sorted(error for error in errors if error)
    if failures:
      raise TasksFailed(f"{len(failures)} of {len(tasks)} {stage} tasks failed (finished ones are kept; rerun the "
                        "same command to retry only the failed ones). First failure:\n" + failures[0])
