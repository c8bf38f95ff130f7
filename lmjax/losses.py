"""Pure loss functions and the LOSSES table the train step picks from by name.

A loss is `fn(model, batch, rng) -> (loss_sum, weight, metric_sums)`: sums, never means, so gradient
accumulation over micro-batches and averaging across hosts stay exact (the step divides once). Metric
values are sums too; the step reports each divided by the total weight. Each table entry names the batch
keys it reads, which the loop checks before compiling.
"""
import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Loss:
  fn: Callable
  batch_keys: tuple[str, ...]


def token_logprobs(logits_btv: jax.Array, targets_bt: jax.Array) -> jax.Array:
  """log p(target) at each position, [b, t], in float32."""
  logits_btv = logits_btv.astype(jnp.float32)
  target_logits_bt = jnp.take_along_axis(logits_btv, targets_bt[..., None], axis=-1)[..., 0]
  return target_logits_bt - jax.nn.logsumexp(logits_btv, axis=-1)


def next_token(model, batch: dict, rng: jax.Array):
  """Cross-entropy of `targets` under the model, summed where `loss_mask` is 1.

  Pretraining masks only padding; SFT passes the chat protocol's assistant-only mask.
  """
  del rng
  logits_btv = model(batch["tokens"], batch["positions"], batch["segment_ids"])
  mask_bt = batch["loss_mask"].astype(jnp.float32)
  nll_sum = -jnp.sum(token_logprobs(logits_btv, batch["targets"]) * mask_bt)
  return nll_sum, jnp.sum(mask_bt), {}


LOSSES = {
    "next_token": Loss(next_token, ("tokens", "targets", "positions", "segment_ids", "loss_mask")),
}


def check_batch_keys(loss_name: str, batch: dict) -> None:
  """Raises a clear error if `batch` lacks a key the named loss reads."""
  if loss_name not in LOSSES:
    raise KeyError(f"unknown loss {loss_name!r}; known: {', '.join(LOSSES)}")
  missing = [k for k in LOSSES[loss_name].batch_keys if k not in batch]
  if missing:
    raise KeyError(f"loss {loss_name!r} needs batch keys {missing}; the batch has {sorted(batch)}")
