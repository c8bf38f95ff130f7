"""Multi-host runs: join the processes into one JAX runtime, and share small JSON state between them.

Every host runs the same command; after `initialize`, `jax.devices()` lists the devices of all hosts, so
the mesh, the global batches and the checkpoints span them. On one process everything here is a no-op.
"""
import json

import jax
import numpy as np
from jax.experimental import multihost_utils

from lmjax.config import UserError


class MultihostError(UserError, ValueError):
  """The processes of a multi-host run were not described completely or consistently."""


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, auto: bool = False) -> None:
  """Joins this process to the others through `jax.distributed.initialize`; a no-op for a single process.

  Either all three of coordinator address (HOST:PORT of process 0), process count and this process's id,
  or `auto=True` to let JAX detect them (TPU pods, SLURM, Open MPI). Must run before any JAX computation.
  """
  if auto:
    jax.distributed.initialize()
    return
  given = {"coordinator address": coordinator_address, "process count": num_processes,
           "process id": process_id}
  if num_processes == 1 or all(v is None for v in given.values()):
    return
  missing = [name for name, v in given.items() if v is None]
  if missing:
    raise MultihostError(f"a multi-process run needs the coordinator address, process count and process id; "
                     f"{', '.join(missing)} not given (or use JAX's auto-detection on TPU/SLURM)")
  if not 0 <= process_id < num_processes:
    raise MultihostError(f"process id {process_id} is outside [0, {num_processes}); number processes from 0")
  jax.distributed.initialize(coordinator_address, num_processes, process_id)


def is_main_process() -> bool:
  """True on the process that writes logs, metrics and summaries (process 0)."""
  return jax.process_index() == 0


def all_gather_json(value) -> list:
  """Every process's JSON-able `value`, in process order (a collective: all processes must call it)."""
  if jax.process_count() == 1:
    return [value]
  encoded = np.frombuffer(json.dumps(value, sort_keys=True).encode(), np.uint8)
  lengths = multihost_utils.process_allgather(np.int32(len(encoded)))
  padded = np.zeros(int(lengths.max()), np.uint8)
  padded[: len(encoded)] = encoded
  gathered = multihost_utils.process_allgather(padded)
  return [json.loads(row[:n].tobytes().decode()) for row, n in zip(np.asarray(gathered), lengths)]


def union_across_processes(local: dict) -> dict:
  """The union of every process's dict; a key several processes hold must have the same value in each."""
  union: dict = {}
  for index, part in enumerate(all_gather_json(local)):
    for key, value in part.items():
      if key in union and union[key] != value:
        raise RuntimeError(f"process {index} disagrees with an earlier process on {key!r}: the processes "
                           "ran different programs or data (same command, config and files on every host?)")
      union[key] = value
  return union
