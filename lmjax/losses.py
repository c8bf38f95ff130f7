"""Pure loss functions and the LOSSES table the train step picks from by name.

A loss is `fn(model, batch, rng) -> (loss_sum, weight, metric_sums)`: sums, never means, so gradient
accumulation over micro-batches and averaging across hosts stay exact (the step divides once). Metric
values are sums too; the step reports each divided by the total weight. Each table entry names the batch
keys it reads, which the loop checks before compiling. Hyperparameters (clip ε, KL coefficient, ...) are
keyword arguments bound with functools.partial before jit; a loss never reads the config.

The four objectives of the design: `next_token` (pretraining; SFT with the chat protocol's assistant
mask), `pairwise_bce` (reward model), `ppo_clip` (policy; group-relative RL feeds it group advantages) and
`ppo_clip_value` (PPO with a critic).
"""
import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Loss:
  fn: Callable
  batch_keys: tuple[str, ...]
  reads_logits: bool = True  # False: only a scalar head is read, so the step never computes the logits
  scalar_head: bool = False  # the model is a WithScalarHead (reward model, PPO critic)


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


def scalar_at(scalars_bt: jax.Array, index_b: jax.Array) -> jax.Array:
  """A scalar head's output at one position per row, [b]: where a reward model's score is read."""
  return jnp.take_along_axis(scalars_bt, index_b[:, None], axis=1)[:, 0]


def pairwise_bce(model, batch: dict, rng: jax.Array):
  """Bradley–Terry loss −log σ(r_chosen − r_rejected), summed over pairs.

  Each row packs one pair as two segments (chosen, rejected); a response's score is the scalar head at its
  last token, `chosen_index` / `rejected_index` [b]. One pair per row keeps micro-batching and sharding exact.
  """
  del rng
  _, scalars_bt = model(batch["tokens"], batch["positions"], batch["segment_ids"])
  margin_b = scalar_at(scalars_bt, batch["chosen_index"]) - scalar_at(scalars_bt, batch["rejected_index"])
  metrics = {"accuracy": jnp.sum(margin_b > 0).astype(jnp.float32), "margin": jnp.sum(margin_b)}
  return jnp.sum(jax.nn.softplus(-margin_b)), jnp.float32(margin_b.shape[0]), metrics


def policy_terms(logprobs_bt, batch: dict, *, clip_eps: float, kl_coef: float):
  """(per-token loss [b, t], metric sums) of PPO's clipped surrogate plus a KL penalty to the reference.

  ratio = π/π_old; surrogate = −min(ratio·A, clip(ratio, 1±ε)·A); KL(π‖π_ref) by the k3 estimator
  exp(ref − logp) − (ref − logp) − 1, which is ≥ 0 and unbiased.
  """
  mask_bt = batch["loss_mask"].astype(jnp.float32)
  advantages_bt = batch["advantages"]
  ratio_bt = jnp.exp(logprobs_bt - batch["old_logprobs"])
  clipped_bt = jnp.clip(ratio_bt, 1 - clip_eps, 1 + clip_eps)
  surrogate_bt = -jnp.minimum(ratio_bt * advantages_bt, clipped_bt * advantages_bt)
  log_ref_ratio_bt = batch["ref_logprobs"] - logprobs_bt
  kl_bt = jnp.exp(log_ref_ratio_bt) - log_ref_ratio_bt - 1
  metrics = {"clip_fraction": jnp.sum((jnp.abs(ratio_bt - 1) > clip_eps) * mask_bt),
             "approx_kl": jnp.sum(0.5 * (logprobs_bt - batch["old_logprobs"]) ** 2 * mask_bt),
             "kl_ref": jnp.sum(kl_bt * mask_bt)}
  return (surrogate_bt + kl_coef * kl_bt) * mask_bt, metrics


def token_entropy(logits_btv: jax.Array) -> jax.Array:
  """Entropy of the next-token distribution at each position, [b, t], in float32."""
  logp_btv = jax.nn.log_softmax(logits_btv.astype(jnp.float32), axis=-1)
  return -jnp.sum(jnp.exp(logp_btv) * logp_btv, axis=-1)


def _policy_loss(logits_btv, batch: dict, *, clip_eps: float, kl_coef: float, entropy_coef: float):
  """`policy_terms` minus the entropy bonus, and the metrics with the summed entropy added."""
  logprobs_bt = token_logprobs(logits_btv, batch["targets"])
  per_token_bt, metrics = policy_terms(logprobs_bt, batch, clip_eps=clip_eps, kl_coef=kl_coef)
  entropy_bt = token_entropy(logits_btv) * batch["loss_mask"].astype(jnp.float32)
  metrics["entropy"] = jnp.sum(entropy_bt)
  return per_token_bt - entropy_coef * entropy_bt, metrics


def ppo_clip(model, batch: dict, rng: jax.Array, *, clip_eps: float = 0.2, kl_coef: float = 0.0,
             entropy_coef: float = 0.0):
  """PPO's clipped policy objective on response tokens (group-relative RL feeds it group advantages)."""
  del rng
  logits_btv = model(batch["tokens"], batch["positions"], batch["segment_ids"])
  per_token_bt, metrics = _policy_loss(logits_btv, batch, clip_eps=clip_eps, kl_coef=kl_coef,
                                       entropy_coef=entropy_coef)
  return jnp.sum(per_token_bt), jnp.sum(batch["loss_mask"].astype(jnp.float32)), metrics


def ppo_clip_value(model, batch: dict, rng: jax.Array, *, clip_eps: float = 0.2, kl_coef: float = 0.0,
                   entropy_coef: float = 0.0, value_clip: float = 0.2, value_coef: float = 0.5):
  """`ppo_clip` plus the critic's clipped value loss ½·max((V − R)², (V_clip − R)²) on the same tokens.

  The model is a `WithScalarHead` (logits and a value per position); the value at position t estimates the
  return from predicting token t + 1 onwards.
  """
  del rng
  logits_btv, values_bt = model(batch["tokens"], batch["positions"], batch["segment_ids"])
  per_token_bt, metrics = _policy_loss(logits_btv, batch, clip_eps=clip_eps, kl_coef=kl_coef,
                                       entropy_coef=entropy_coef)
  mask_bt = batch["loss_mask"].astype(jnp.float32)
  old_bt, returns_bt = batch["old_values"], batch["returns"]
  clipped_bt = old_bt + jnp.clip(values_bt - old_bt, -value_clip, value_clip)
  value_loss_bt = 0.5 * jnp.maximum((values_bt - returns_bt) ** 2, (clipped_bt - returns_bt) ** 2) * mask_bt
  metrics["value_loss"] = jnp.sum(value_loss_bt)
  return jnp.sum(per_token_bt + value_coef * value_loss_bt), jnp.sum(mask_bt), metrics


_SEQUENCE = ("tokens", "positions", "segment_ids")
_POLICY = (*_SEQUENCE, "targets", "loss_mask", "old_logprobs", "advantages", "ref_logprobs")

LOSSES = {
    "next_token": Loss(next_token, (*_SEQUENCE, "targets", "loss_mask")),
    "pairwise_bce": Loss(pairwise_bce, (*_SEQUENCE, "chosen_index", "rejected_index"), reads_logits=False,
                         scalar_head=True),
    "ppo_clip": Loss(ppo_clip, _POLICY),
    "ppo_clip_value": Loss(ppo_clip_value, (*_POLICY, "old_values", "returns"), scalar_head=True),
}


def check_batch_keys(loss_name: str, batch: dict) -> None:
  """Raises a clear error if `batch` lacks a key the named loss reads."""
  if loss_name not in LOSSES:
    raise KeyError(f"unknown loss {loss_name!r}; known: {', '.join(LOSSES)}")
  missing = [k for k in LOSSES[loss_name].batch_keys if k not in batch]
  if missing:
    raise KeyError(f"loss {loss_name!r} needs batch keys {missing}; the batch has {sorted(batch)}")
