"""A training run's directory, the scaffolding the supervised loop and RL share: the saved config, restore or
initialise from its checkpoints, the metrics log, the stop on a non-finite loss, and the summary. Only
process 0 writes files; every process takes part in checkpointing.
"""
import json
import os

from lmjax import distributed, fs
from lmjax.config import UserError
from lmjax.train import checkpoint
from lmjax.train.metrics import MetricsLog


class NonFiniteLossError(UserError, RuntimeError):
  """The loss became NaN or inf; the last good checkpoint is kept."""


class Workdir:
  """WORKDIR of one stage (a local path, file:// or gs:// URL; `lmjax.fs`): config.json, checkpoints/,
  metrics.jsonl (and tensorboard/), summary.json."""

  def __init__(self, config, path: str):
    fs.makedirs(path)
    self.path, self.config = path, config
    self.is_main = distributed.is_main_process()  # logs, metrics, progress bars and summaries: process 0
    if self.is_main:
      fs.write_text(os.path.join(path, "config.json"), config.to_json_best_effort(indent=2))
    self.manager = checkpoint.make_manager(os.path.join(path, "checkpoints"), keep=config.checkpoint.keep)
    self.log = None

  def restore_or_init(self, setup, init_state):
    """(state, the checkpoint's extras) of the latest checkpoint, or (`init_state()`, None); then opens the
    metrics log, resuming it after the restored step."""
    step = self.manager.latest_step()
    state, extras = ((init_state(), None) if step is None else
                     checkpoint.restore(self.manager, step, setup.abstract_state, setup.shardings))
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

  def close(self, summary: dict) -> dict:
    """Waits for the last checkpoint, closes the log and writes summary.json."""
    self.manager.wait_until_finished()
    if self.log:
      self.log.close()
    if self.is_main:
      fs.write_text(os.path.join(self.path, "summary.json"), json.dumps(summary, indent=2))
    return summary
