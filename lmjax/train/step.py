"""The one train step: pretraining, SFT, reward modelling and PPO differ only in the loss function.

`make_train_step(model_def, loss_fn, optimizer, shardings)` returns `step(state, batch, rng) -> (state,
metrics)`, jitted once with explicit shardings and the state donated. The state holds the parameters that
train; `Frozen` ones (a LoRA run's base) are a further input, read and never differentiated or donated.
"""
import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from lmjax.sharding import replicated
from lmjax.train.state import TrainState


def _trained_only(frozen, params):
  return params


@dataclasses.dataclass(frozen=True)
class Frozen:
  """Parameters the model reads but the step never trains (a LoRA run's base), and how the trained ones
  combine with them into the model's. The default holds none: the trained parameters are the model's."""
  params: object = None  # arrays, or ShapeDtypeStructs to lower a step from shapes
  shardings: object = None
  combine: Callable = _trained_only  # (frozen params, trained params) -> the model's parameters

  def model_params(self, trained):
    """The model's parameters for `trained` (placed like the frozen ones): what sampling and scoring read."""
    if self.params is None:
      return trained
    return jax.jit(self.combine, out_shardings=self.shardings)(self.params, trained)


class _Bound:
  """A jitted `fn(frozen params, *args)` called and lowered as `fn(*args)`."""

  def __init__(self, jitted, frozen_params):
    self.jitted, self.frozen_params = jitted, frozen_params

  def __call__(self, *args):
    return self.jitted(self.frozen_params, *args)

  def lower(self, *args):
    return self.jitted.lower(self.frozen_params, *args)


def _loss_and_grads(model_def, loss_fn, params, batch, rng, frozen: Frozen, frozen_params):
  """(loss_sum, weight, metric_sums), d loss_sum / d params (the trained ones)."""
  def summed_loss(p):
    model = nnx.merge(model_def, frozen.combine(frozen_params, p))
    loss_sum, weight, metrics = loss_fn(model, batch, rng)
    return loss_sum, (weight, metrics)
  (loss_sum, (weight, metrics)), grads = jax.value_and_grad(summed_loss, has_aux=True)(params)
  return (loss_sum, weight, metrics), grads


def _sum_over_micro_batches(fn: Callable, batch, rng, num_micro: int, batch_sharding):
  """Sums the tree `fn(micro_batch, rng)` over `num_micro` equal slices of the batch (a scan), so only one
  slice's activations are live at a time."""
  if num_micro == 1:
    return fn(batch, rng)
  # Row i of micro-batch j is row i·num_micro + j: every device keeps its own rows, no data moves.
  micro_batches = jax.tree.map(lambda x: x.reshape(-1, num_micro, *x.shape[1:]).swapaxes(0, 1), batch)

  def add_micro(carry, inputs):
    micro, index = inputs
    micro = jax.lax.with_sharding_constraint(micro, batch_sharding)
    return jax.tree.map(jnp.add, carry, fn(micro, jax.random.fold_in(rng, index))), None

  zero = jax.tree.map(jnp.zeros_like, jax.eval_shape(lambda: fn(jax.tree.map(lambda x: x[0], micro_batches), rng)))
  total, _ = jax.lax.scan(add_micro, zero, (micro_batches, jnp.arange(num_micro)))
  return total


def _global_norm(tree) -> jax.Array:
  return optax.global_norm(jax.tree.leaves(tree))


def make_train_step(model_def, loss_fn: Callable, optimizer: optax.GradientTransformation, shardings, *,
                    batch_sharding, grad_accum_steps: int = 1, lr_schedule: optax.Schedule | None = None,
                    frozen: Frozen = Frozen()):
  """A jitted `step(state, batch, rng) -> (state, metrics)`.

  `loss_fn(model, batch, rng) -> (loss_sum, weight, metric_sums)`; gradients are of loss_sum / weight over
  the whole (accumulated) batch. `shardings` is the TrainState's sharding tree; every batch array is
  sharded by `batch_sharding`. Metrics: loss, grad_norm (before clipping), param_norm (of the trained
  parameters), lr, tokens (weight).
  """
  def step(frozen_params, state: TrainState, batch: dict, rng: jax.Array):
    rng = jax.random.fold_in(rng, state.step)
    loss_and_grads = lambda micro, micro_rng: _loss_and_grads(model_def, loss_fn, state.params, micro, micro_rng,
                                                              frozen, frozen_params)
    (loss_sum, weight, metric_sums), grad_sums = _sum_over_micro_batches(
        loss_and_grads, batch, rng, grad_accum_steps, batch_sharding)
    safe_weight = jnp.maximum(weight, 1.0)
    grads = jax.tree.map(lambda g: g / safe_weight, grad_sums)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {k: v / safe_weight for k, v in metric_sums.items()}
    metrics.update(loss=loss_sum / safe_weight, tokens=weight, grad_norm=_global_norm(grads),
                   param_norm=_global_norm(params))
    if lr_schedule is not None:
      metrics["lr"] = lr_schedule(state.step)
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

  whole = replicated(batch_sharding.mesh)
  jitted = jax.jit(step, in_shardings=(frozen.shardings, shardings, batch_sharding, whole),
                   out_shardings=(shardings, whole), donate_argnums=1)
  return _Bound(jitted, frozen.params)


def make_eval_step(model_def, loss_fn: Callable, param_shardings, *, batch_sharding, micro_batches: int = 1,
                   frozen: Frozen = Frozen()):
  """A jitted `eval_step(params, batch) -> (loss_sum, weight, metric_sums)`: the loss without gradients,
  summed over `micro_batches` slices like the train step's (a whole batch at once can need many times the
  train step's memory). `params` are the trained ones, combined with `frozen` as in the train step."""
  def eval_step(frozen_params, params, batch):
    model_params = frozen.combine(frozen_params, params)
    loss = lambda micro, rng: loss_fn(nnx.merge(model_def, model_params), micro, rng)
    return _sum_over_micro_batches(loss, batch, jax.random.key(0), micro_batches, batch_sharding)

  jitted = jax.jit(eval_step, in_shardings=(frozen.shardings, param_shardings, batch_sharding),
                   out_shardings=replicated(batch_sharding.mesh))
  return _Bound(jitted, frozen.params)
