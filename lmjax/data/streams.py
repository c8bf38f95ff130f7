"""Global batches that do not depend on the number of hosts: rows come from a fixed number of streams.

The rows of every global batch are split between `count` independent streams (`data.streams`): stream s
reads every count-th example of the shuffled order and supplies rows [s·R, (s+1)·R) of each batch, with
R = batch_size / count. A process builds only the streams behind the rows its devices hold and keeps those
rows. So the global batch is the same whether one process or many read it, a process reads only its
share when the process count divides `count` (with count=1 every process reads the one stream and keeps
its rows), and the data position — one grain state per stream — restores on any number of processes.
"""
import math
from collections.abc import Callable

import grain
import numpy as np

from lmjax.config import ConfigError


class RowStreams:
  """Iterator over this process's rows [start, stop) of each global batch, drawn from the streams.

  `make_stream(index, count, rows)` builds stream `index` of `count`: a grain dataset of batches of
  `rows` rows. `get_state()` is this process's streams' positions keyed by stream index; `set_state`
  takes the union of every process's (what a checkpoint holds) and picks its own streams.
  """

  def __init__(self, make_stream: Callable[[int, int, int], grain.IterDataset], *, count: int,
               batch_size: int, rows: tuple[int, int]):
    if count < 1 or batch_size % count:
      raise ConfigError(f"config.data.streams={count} must divide train.batch_size={batch_size}")
    start, stop = rows
    if not 0 <= start < stop <= batch_size:
      raise ValueError(f"rows [{start}, {stop}) are not a slice of a batch of {batch_size}")
    per_stream = batch_size // count
    first, last = start // per_stream, math.ceil(stop / per_stream)
    self.count = count
    self.iterators = {s: iter(make_stream(s, count, per_stream)) for s in range(first, last)}
    self.rows = slice(start - first * per_stream, stop - first * per_stream)

  def __iter__(self):
    return self

  def __next__(self) -> dict:
    parts = [next(it) for it in self.iterators.values()]
    if len(parts) == 1:
      return {k: v[self.rows] for k, v in parts[0].items()}
    return {k: np.concatenate([p[k] for p in parts])[self.rows] for k in parts[0]}

  def get_state(self) -> dict:
    return {str(s): it.get_state() for s, it in self.iterators.items()}

  def set_state(self, state: dict) -> None:
    if not all(k.isdigit() for k in state):
      state = {"0": state}  # saved before data.streams existed: the state of the one stream
    if len(state) != self.count:
      raise ConfigError(f"the checkpoint's data position has {len(state)} streams but config.data.streams="
                        f"{self.count}; resume with the data.streams of the run that wrote it")
    for s, it in self.iterators.items():
      it.set_state(state[str(s)])
