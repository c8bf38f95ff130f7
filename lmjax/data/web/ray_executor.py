"""Run each stage's tasks on a Ray cluster (`pip install 'lmjax[ray]'`): the same tasks as locally, one Ray task each.

Every worker must see the same paths (a shared filesystem, or one machine), as each task reads
and writes files under the workdir.
"""
from __future__ import annotations

import tqdm

from lmjax.data.web.tasks import Task, TasksFailed, pending, run_task


class RayExecutor:
  """Connects to Ray at `address` ("auto", "ray://host:10001", or None to start a local instance of `workers` CPUs)."""

  def __init__(self, address: str | None = None, workers: int | None = None):
    try:
      import ray
    except ImportError as error:
      raise ImportError("--executor=ray needs Ray: pip install 'lmjax[ray]'") from error
    self._ray = ray
    self._started_here = not ray.is_initialized()
    if self._started_here:
      ray.init(address=address, num_cpus=workers if address is None else None, log_to_driver=False)
    self._remote_run = ray.remote(num_cpus=1, max_retries=0)(run_task)

  def __enter__(self) -> RayExecutor:
    return self

  def __exit__(self, *exc_info) -> None:
    if self._started_here:
      self._ray.shutdown()

  def run(self, stage: str, tasks: list[Task]) -> None:
    todo = pending(tasks)
    futures = [self._remote_run.remote(task) for task in todo]
    failures = []
    with tqdm.tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=f"{stage} (ray)", unit="task") as bar:
      while futures:
        done, futures = self._ray.wait(futures, num_returns=1)
        error = self._ray.get(done[0])
        if error:
          failures.append(error)
        bar.update()
    if failures:
      raise TasksFailed(f"{len(failures)} of {len(tasks)} {stage} tasks failed on Ray (finished ones are kept; "
                        "rerun to retry only the failed ones). First failure:\n" + sorted(failures)[0])
