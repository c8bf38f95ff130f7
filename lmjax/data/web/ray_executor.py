"""Run a stage's tasks on a Ray cluster (`pip install 'lmjax[ray]'`): the same tasks as locally, one Ray task each.

Every worker must see the same paths (a shared filesystem or a single machine), as each task
reads and writes files under the workdir.
"""
from __future__ import annotations

import tqdm

from lmjax.data.web.tasks import Task, TasksFailed, pending, run_task


def run_ray(stage: str, tasks: list[Task], address: str | None = None, workers: int | None = None) -> None:
  """Connect to Ray at `address` ("auto", "ray://host:10001", or None for a local instance) and run pending tasks."""
  try:
    import ray
  except ImportError as error:
    raise ImportError("--executor=ray needs Ray: pip install 'lmjax[ray]'") from error
  if not ray.is_initialized():
    ray.init(address=address, num_cpus=workers if address is None else None, log_to_driver=False)
  remote_run = ray.remote(num_cpus=1, max_retries=0)(run_task)
  todo = pending(tasks)
  futures = [remote_run.remote(task) for task in todo]
  failures = []
  with tqdm.tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc=f"{stage} (ray)", unit="task") as bar:
    while futures:
      done, futures = ray.wait(futures, num_returns=1)
      error = ray.get(done[0])
      if error:
        failures.append(error)
      bar.update()
  if failures:
    raise TasksFailed(f"{len(failures)} of {len(tasks)} {stage} tasks failed on Ray (finished ones are kept; "
                      "rerun to retry only the failed ones). First failure:\n" + failures[0])
