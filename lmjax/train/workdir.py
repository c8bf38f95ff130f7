"""A training run's directory, the scaffolding the supervised loop and RL share: one writer (its lock), the
saved config, restore or initialise from its newest good checkpoint, the metrics log, the stop on a
non-finite loss or a signal, and the summary. Only process 0 writes files; every process takes part in
checkpointing.
"""
import contextlib
import json
import os

from lmjax import distributed, fs, lock
from lmjax.config import UserError
from lmjax.train import checkpoint, preemption
from lmjax.train.metrics import MetricsLog


class NonFiniteLossError(UserError, RuntimeError):
  """The loss became NaN or inf; the last good checkpoint is kept."""


class Workdir:
  """WORKDIR of one stage (a local path, file:// or gs:// URL; `lmjax.fs`): config.json, checkpoints/,
  metrics.jsonl (and tensorboard/), summary.json. Used as `with Workdir(config, path) as run_dir:`, which
  holds the folder's lock (a local one: an object store cannot lock) and catches SIGTERM/SIGINT."""

  def __init__(self, config, path: str):
    self.path, self.config = path, config
    self.is_main = distributed.is_main_process()  # logs, metrics, progress bars and summaries: process 0
    self.manager, self.log, self.watch = None, None, preemption.Watch()
    self.exit_stack = contextlib.ExitStack()

  def __enter__(self) -> "Workdir":
    fs.makedirs(self.path)
    with contextlib.ExitStack() as stack:  # unwound if anything below raises
      self._lock(stack)
      stack.callback(self._finish_writes)
      stack.enter_context(self.watch)
      if self.is_main:
        fs.write_text(os.path.join(self.path, "config.json"), self.config.to_json_best_effort(indent=2))
      self.manager = checkpoint.make_manager(os.path.join(self.path, "checkpoints"),
                                             keep=self.config.checkpoint.keep, writer=True)
      self.exit_stack = stack.pop_all()
    return self

  def __exit__(self, *exc):
    return self.exit_stack.__exit__(*exc)

  def _lock(self, stack: contextlib.ExitStack) -> None:
    """Process 0 takes the folder's lock (a local folder's); every process stops if it could not."""
    refusal = None
    if self.is_main and not fs.is_remote(self.path):
      try:
        stack.enter_context(lock.held(fs.normalize(self.path)))
      except lock.LockedError as error:
        refusal = str(error)
    refusal = distributed.all_gather_json(refusal)[0]
    if refusal:
      raise lock.LockedError(refusal)

  def _finish_writes(self) -> None:
    """Before the lock goes: the last checkpoint written and the log closed."""
    if self.manager:
      self.manager.wait_until_finished()
    if self.log:
      self.log.close()
      self.log = None

  def restore_or_init(self, setup, init_state):
    """(state, the checkpoint's extras) of the newest checkpoint that reads (damaged newer ones are moved
    aside), or (`init_state()`, None); then opens the metrics log, resuming it after the restored step."""
    newest = checkpoint.restore_newest(self.manager, setup.abstract_state, setup.shardings)
    step, state, extras = newest or (None, init_state(), None)
    if self.is_main:
      tensorboard = os.path.join(self.path, "tensorboard") if self.config.log.tensorboard else None
      self.log = MetricsLog(os.path.join(self.path, "metrics.jsonl"), resume_step=step or 0,
                            tensorboard_dir=tensorboard)
    return state, extras

  def write(self, step: int, metrics: dict) -> None:
    if self.log:
      self.log.write(step, metrics)

  def save(self, step: int, state, extras: dict) -> None:
    checkpoint.save(self.manager, step, state, extras)

  def stop_on_nonfinite_loss(self, step: int, loss: float, fix: str):
    """Drops the checkpoint whose parameters gave step `step`'s loss (the previous step's) and any later one
    (saved before the loss was read), then raises with `fix`, what to change."""
    self.manager.wait_until_finished()
    for saved in self.manager.all_steps():
      if saved >= step - 1:
        self.manager.delete(saved)
    good = self.manager.latest_step()
    where = (f"The last good checkpoint is step {good} in {self.path}/checkpoints" if good
             else "No good checkpoint exists")
    raise NonFiniteLossError(f"loss is {loss} at step {step}; stopped. {where}. {fix}, then rerun to resume.")

  def stop_requested(self) -> bool:
    """Whether a SIGTERM/SIGINT asks the run to save and stop (a collective across processes)."""
    return self.watch.requested()

  def stop_preempted(self, what: str):
    """Raises Preempted once the checkpoint just saved (of `what`, e.g. "step 7") is written."""
    self._finish_writes()
    raise self.watch.stop(what, self.path)

  def close(self, summary: dict) -> dict:
    """Waits for the last checkpoint, closes the log and writes summary.json."""
    self._finish_writes()
    if self.is_main:
      fs.write_text(os.path.join(self.path, "summary.json"), json.dumps(summary, indent=2))
    return summary
