"""The supervised training loop every stage shares: restore or initialise, step, log, evaluate, checkpoint.

A stage (pretraining, SFT, reward model) supplies its data iterator, validation batches and initial state;
the loop owns everything else. Rerunning a stage on the same WORKDIR resumes from its last checkpoint,
data position included. The loss is checked every step: a NaN/inf stops the run and drops the checkpoint
whose parameters produced it.
"""
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable

import jax

from lmjax import distributed, fs, losses
from lmjax.config import UserError
from lmjax.train import checkpoint
from lmjax.model import ModelConfig, flops_per_token
from lmjax.train.hardware import peak_flops_per_device
from lmjax.train.metrics import MetricsLog, Progress
from lmjax.train.setup import TrainSetup
from lmjax.train.step import make_eval_step, make_train_step


class NonFiniteLossError(UserError, RuntimeError):
  """The loss became NaN or inf; the last good checkpoint is kept."""


def global_batch(setup: TrainSetup, local_batch: dict) -> dict:
  """Global arrays with rows sharded over the data axes, assembled from this process's rows."""
  return {k: jax.make_array_from_process_local_data(setup.batch_sharding, v) for k, v in local_batch.items()}


def evaluate(eval_step, params, batches: list[dict]) -> dict:
  """`val_loss` and `val_<metric>` per unit of weight (e.g. per target token, per pair) over fixed batches."""
  totals: dict[str, float] = {}
  for batch in batches:
    loss_sum, weight, metric_sums = jax.device_get(eval_step(params, batch))
    for name, value in {"loss": loss_sum, "weight": weight, **metric_sums}.items():
      totals[name] = totals.get(name, 0.0) + float(value)
  weight = max(totals.pop("weight"), 1.0)
  return {f"val_{name}": value / weight for name, value in totals.items()}


@dataclasses.dataclass
class StageData:
  """What a stage feeds the loop: a checkpointable iterator of local batches and fixed validation batches."""
  # next() -> dict of numpy arrays, this process's rows of the global batch (see lmjax.data.streams);
  # get_state() -> this process's share of the position; set_state(union of every process's share)
  train: object
  val_batches: list[dict]  # local numpy batches, the same at every evaluation
  bytes_per_target: float | None = None  # validation text bytes per target token, for bits per byte


def train(config, workdir: str, setup: TrainSetup, data: StageData, *, loss_fn: Callable, loss_name: str,
          init_state: Callable[[], object]) -> dict:
  """Trains to `config.train.steps`, resuming from WORKDIR/checkpoints; returns (and writes) the summary.

  `init_state()` gives the state of a fresh run (random init, or a previous stage's parameters). Validation
  logs `val_loss` and `val_<metric>` for every metric the loss returns (e.g. the reward model's accuracy).
  """
  fs.makedirs(workdir)
  is_main = distributed.is_main_process()  # logs, metrics, the progress bar and summaries come from process 0
  if is_main:
    fs.write_text(os.path.join(workdir, "config.json"), config.to_json_best_effort(indent=2))
  t = config.train
  manager = checkpoint.make_manager(os.path.join(workdir, "checkpoints"), keep=config.checkpoint.keep)
  state = _restore_or_init(setup, manager, data.train, init_state)
  start = int(state.step)
  first = next(data.train)
  losses.check_batch_keys(loss_name, first)
  train_step = make_train_step(setup.graphdef, loss_fn, setup.optimizer, setup.shardings,
                               batch_sharding=setup.batch_sharding, grad_accum_steps=t.grad_accum_steps,
                               lr_schedule=setup.schedule)
  eval_step = make_eval_step(setup.graphdef, loss_fn, setup.shardings, batch_sharding=setup.batch_sharding,
                             micro_batches=t.grad_accum_steps)
  val_batches = [global_batch(setup, b) for b in data.val_batches]
  tensorboard = os.path.join(workdir, "tensorboard") if config.log.tensorboard and is_main else None
  log = MetricsLog(os.path.join(workdir, "metrics.jsonl"), resume_step=start,
                   tensorboard_dir=tensorboard) if is_main else None
  peak, nominal = peak_flops_per_device()
  peak *= 1 if jax.devices()[0].platform == "cpu" else jax.device_count()  # fake CPU devices share the cores
  tokens_per_step = t.batch_size * t.seq_len
  flops_per_step = model_flops_per_step(setup.model_config, loss_name, t.batch_size, t.seq_len)
  progress = Progress(start=start, total=t.steps, tokens_per_step=tokens_per_step, flops_per_step=flops_per_step,
                      peak_flops=peak, peak_is_nominal=nominal, enabled=is_main)
  rng = jax.random.key(t.seed)

  def validation(step: int) -> dict:
    if not val_batches or not (step == t.steps or (config.eval.every_steps and step % config.eval.every_steps == 0)):
      return {}
    val = evaluate(eval_step, state.params, val_batches)
    if data.bytes_per_target:
      val["val_bpb"] = val["val_loss"] / math.log(2) / data.bytes_per_target
    return val

  def finish(step: int, device_metrics: dict, val: dict) -> dict | None:
    """Reads a step's metrics (by now the next step is queued behind it), stops on a non-finite loss, and
    logs the step's line if it has one."""
    metrics = {k: float(v) for k, v in jax.device_get(device_metrics).items()}
    if not math.isfinite(metrics["loss"]):
      progress.close()
      _stop_on_nonfinite_loss(manager, step, metrics["loss"], workdir)
    if not (val or step % config.log.every_steps == 0 or step == t.steps):
      return None
    metrics |= progress.update(step, metrics["loss"]) | {"tokens_seen": step * tokens_per_step} | val
    if is_main:
      log.write(step, metrics)
    return metrics

  # Each step's metrics are read one step late, after the next batch is on its way and the next step is
  # queued, so the host never idles the device; the NaN check lags with them. Before a checkpoint the step's
  # own loss is read, so no checkpoint (and none that rotation would drop for it) follows a non-finite loss.
  started, summary, pending = time.time(), {}, None
  for step in range(start + 1, t.steps + 1):
    batch = first if step == start + 1 else next(data.train)
    state, metrics = train_step(state, global_batch(setup, batch), rng)
    if pending:
      summary = finish(*pending) or summary
    pending = (step, metrics, validation(step))
    if step % config.checkpoint.every_steps == 0 or step == t.steps:
      summary, pending = finish(*pending) or summary, None
      checkpoint.save(manager, step, state,
                      {"iterator": distributed.union_across_processes(data.train.get_state())})
  if pending:
    summary = finish(*pending) or summary
  manager.wait_until_finished()
  progress.close()
  if log:
    log.close()
  summary = {"steps": t.steps, "resumed_from": start, "wall_s": time.time() - started,
             "params": setup.param_count, "model_flops_per_step": flops_per_step,
             "peak_flops": progress.peak_flops, "peak_flops_nominal": nominal, **summary}
  if is_main:
    fs.write_text(os.path.join(workdir, "summary.json"), json.dumps(summary, indent=2))
  return summary


def model_flops_per_step(model_config: ModelConfig, loss_name: str, batch_size: int, seq_len: int) -> float:
  """The model FLOPs of one training step of `loss_name` (PaLM's convention): every row's every position
  runs forward and backward, packed or padded alike; a loss that reads no logits skips the output head."""
  logits = losses.LOSSES[loss_name].reads_logits
  return batch_size * seq_len * flops_per_token(model_config, seq_len, logits=logits)


def _restore_or_init(setup: TrainSetup, manager, data, init_state: Callable):
  """The latest checkpoint's state (moving `data` to its saved position), or `init_state()`."""
  step = manager.latest_step()
  if step is None:
    return init_state()
  state, data_state = checkpoint.restore(manager, step, setup.abstract_state, setup.shardings)
  data.set_state(data_state["iterator"])
  return state


def _stop_on_nonfinite_loss(manager, step: int, loss: float, workdir: str):
  """Drops the checkpoint whose parameters gave step `step`'s loss (the previous step's) and any later one
  (saved before the loss was read), then raises."""
  manager.wait_until_finished()
  for saved in manager.all_steps():
    if saved >= step - 1:
      manager.delete(saved)
  good = manager.latest_step()
  where = f"The last good checkpoint is step {good} in {workdir}/checkpoints" if good else "No good checkpoint exists"
  raise NonFiniteLossError(f"loss is {loss} at step {step}; stopped. {where}. "
                           "Lower optim.lr, raise schedule.warmup_steps or check the data, then rerun to resume.")
