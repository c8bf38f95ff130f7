"""The supervised training loop every stage shares: restore or initialise, step, log, evaluate, checkpoint.

A stage (pretraining, SFT, reward model) supplies its data iterator, validation batches and initial state;
the loop owns everything else. Rerunning a stage on the same WORKDIR resumes from its last checkpoint,
data position included. The loss is checked every step: a NaN/inf stops the run and drops the checkpoint
whose parameters produced it. A SIGTERM/SIGINT saves a checkpoint after the step it arrived in, then stops
(lmjax.train.preemption).
"""
import dataclasses
import math
import time
from collections.abc import Callable

import jax

from lmjax import distributed, losses
from lmjax.model import ModelConfig, flops_per_token
from lmjax.train.hardware import peak_flops_per_device
from lmjax.train.metrics import Progress
from lmjax.train.setup import TrainSetup
from lmjax.train.step import Frozen, make_eval_step, make_train_step
from lmjax.train.workdir import Workdir


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
          init_state: Callable[[], object], frozen: Frozen = Frozen()) -> dict:
  """Trains to `config.train.steps`, resuming from WORKDIR/checkpoints; returns (and writes) the summary.

  `init_state()` gives the state of a fresh run (random init, a previous stage's parameters, or LoRA's fresh
  adapters, with the base as `frozen`: `setup.frozen(base params)`). Validation
  logs `val_loss` and `val_<metric>` for every metric the loss returns (e.g. the reward model's accuracy).
  """
  with Workdir(config, workdir) as run_dir:
    t = config.train
    state, saved = run_dir.restore_or_init(setup, init_state)
    if saved:
      data.train.set_state(saved["iterator"])
    start = int(state.step)
    first = next(data.train)
    losses.check_batch_keys(loss_name, first)
    train_step = make_train_step(setup.graphdef, loss_fn, setup.optimizer, setup.shardings,
                                 batch_sharding=setup.batch_sharding, grad_accum_steps=t.grad_accum_steps,
                                 lr_schedule=setup.schedule, frozen=frozen)
    eval_step = make_eval_step(setup.graphdef, loss_fn, setup.shardings.params,
                               batch_sharding=setup.batch_sharding, micro_batches=t.grad_accum_steps,
                               frozen=frozen)
    val_batches = [global_batch(setup, b) for b in data.val_batches]
    peak, nominal = peak_flops_per_device()
    peak *= 1 if jax.devices()[0].platform == "cpu" else jax.device_count()  # fake CPU devices share the cores
    tokens_per_step = t.batch_size * t.seq_len
    flops_per_step = model_flops_per_step(setup.model_config, loss_name, t.batch_size, t.seq_len)
    progress = Progress(start=start, total=t.steps, tokens_per_step=tokens_per_step, flops_per_step=flops_per_step,
                        peak_flops=peak, peak_is_nominal=nominal, enabled=run_dir.is_main)
    rng = jax.random.key(t.seed)

    def validation(step: int) -> dict:
      every = config.eval.every_steps
      if not val_batches or not (step == t.steps or (every and step % every == 0)):
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
        run_dir.stop_on_nonfinite_loss(step, metrics["loss"], "Lower optim.lr, raise schedule.warmup_steps or "
                                       "check the data")
      if not (val or step % config.log.every_steps == 0 or step == t.steps):
        return None
      metrics |= progress.update(step, metrics["loss"]) | {"tokens_seen": step * tokens_per_step} | val
      run_dir.write(step, metrics)
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
      stopping = step < t.steps and run_dir.stop_requested()
      if step % config.checkpoint.every_steps == 0 or step == t.steps or stopping:
        summary, pending = finish(*pending) or summary, None
        run_dir.save(step, state, {"iterator": distributed.union_across_processes(data.train.get_state())})
      if stopping:
        progress.close()
        run_dir.stop_preempted(f"step {step}")
    if pending:
      summary = finish(*pending) or summary
    progress.close()
    return run_dir.close({"steps": t.steps, "resumed_from": start, "wall_s": time.time() - started,
                          "params": setup.param_count, "trainable_params": setup.trainable_count,
                          "model_flops_per_step": flops_per_step,
                          "peak_flops": progress.peak_flops, "peak_flops_nominal": nominal, **summary})


def model_flops_per_step(model_config: ModelConfig, loss_name: str, batch_size: int, seq_len: int) -> float:
  """The model FLOPs of one training step of `loss_name` (PaLM's convention): every row's every position
  runs forward and backward, packed or padded alike; a loss that reads no logits skips the output head."""
  logits = losses.LOSSES[loss_name].reads_logits
  return batch_size * seq_len * flops_per_token(model_config, seq_len, logits=logits)
