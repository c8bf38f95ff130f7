"""Pure loss functions and the LOSSES table the train step picks from by name.

A loss is `fn(model, batch, rng) -> (loss_sum, weight, metric_sums)`: sums, never means, so gradient
accumulation over micro-batches and averaging across hosts stay exact (the step divides once). Metric
values are sums too; the step reports each divided by the total weight. Each table entry names the batch
keys it reads, which the loop checks before compiling. Hyperparameters (clip ε, KL coefficient, ...) are
keyword arguments bound with functools.partial before jit; a loss never reads the config.

The four objectives of the design: `next_token` (pretraining; SFT with the chat protocol's assistant
mask), `pairwise_bce` (reward model; `pairwise_bce_logprob` when its score adds the reply's log-prob),
`ppo_clip` (policy; group-relative RL feeds it group advantages) and `ppo_clip_value` (PPO with a critic);
and the preference losses that train the policy on pairs directly, `dpo`, `ipo` (against the frozen
reference's log-probs) and the reference-free `simpo` and `orpo`.
"""
import dataclasses
import functools
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


def reply_reward(scalars_bt, logprobs_bt, index_b, mask_bt, logprob_weight: float) -> jax.Array:
  """A reward model's score of one reply per row, [b]: its scalar head at the reply's last token `index_b`,
  plus `logprob_weight` × the reply's mean token log-prob under its own language-model head (where `mask_bt`
  is 1; SimPO's length-normalised implicit reward), which lets a small model's next-token knowledge judge."""
  reward_b = scalar_at(scalars_bt, index_b)
  if logprob_weight:
    mask_bt = mask_bt.astype(jnp.float32)
    mean_b = jnp.sum(logprobs_bt * mask_bt, axis=1) / jnp.maximum(jnp.sum(mask_bt, axis=1), 1.0)
    reward_b = reward_b + logprob_weight * mean_b
  return reward_b


def pairwise_bce(model, batch: dict, rng: jax.Array, *, logprob_weight: float = 0.0):
  """Bradley–Terry loss −log σ(r_chosen − r_rejected), summed over pairs.

  Each row packs one pair as two segments (chosen, rejected); a response's score is `reply_reward`: the
  scalar head at its last token (`chosen_index` / `rejected_index` [b]) plus, with `logprob_weight`, its
  mean token log-prob over `chosen_mask` / `rejected_mask`. One pair per row keeps micro-batching and
  sharding exact.
  """
  del rng
  logits_btv, scalars_bt = model(batch["tokens"], batch["positions"], batch["segment_ids"])
  logprobs_bt = token_logprobs(logits_btv, batch["targets"]) if logprob_weight else None
  reward_c_b, reward_r_b = (reply_reward(scalars_bt, logprobs_bt, batch[f"{side}_index"],
                                         batch.get(f"{side}_mask"), logprob_weight)
                            for side in ("chosen", "rejected"))
  margin_b = reward_c_b - reward_r_b
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


def response_logprobs(model, batch: dict) -> tuple[jax.Array, ...]:
  """(log π(chosen), log π(rejected), chosen tokens, rejected tokens), each [b]: one pair per row, the two
  responses' target log-probs summed over `chosen_mask` / `rejected_mask` [b, t] (their reply tokens only)."""
  logprobs_bt = token_logprobs(model(batch["tokens"], batch["positions"], batch["segment_ids"]), batch["targets"])
  chosen_bt, rejected_bt = (batch[k].astype(jnp.float32) for k in ("chosen_mask", "rejected_mask"))
  return (jnp.sum(logprobs_bt * chosen_bt, axis=1), jnp.sum(logprobs_bt * rejected_bt, axis=1),
          jnp.sum(chosen_bt, axis=1), jnp.sum(rejected_bt, axis=1))


def _pair_metrics(chosen_b, rejected_b, reward_c_b, reward_r_b) -> dict:
  """Sums over pairs: accuracy (chosen's implicit reward above rejected's; a tie counts half, so an untrained
  DPO policy, whose rewards are both 0, reads 0.5), the reward margin, rewards and response log-probs."""
  margin_b = reward_c_b - reward_r_b
  return {"accuracy": jnp.sum((margin_b > 0) + 0.5 * (margin_b == 0)), "margin": jnp.sum(margin_b),
          "chosen_reward": jnp.sum(reward_c_b), "rejected_reward": jnp.sum(reward_r_b),
          "chosen_logprob": jnp.sum(chosen_b), "rejected_logprob": jnp.sum(rejected_b)}


def _reference_rewards(model, batch: dict, beta: float):
  """(log π(c), log π(r), β·(log π(c) − log π_ref(c)), β·(log π(r) − log π_ref(r))): DPO's implicit rewards."""
  chosen_b, rejected_b, _, _ = response_logprobs(model, batch)
  return (chosen_b, rejected_b, beta * (chosen_b - batch["ref_chosen_logprob"]),
          beta * (rejected_b - batch["ref_rejected_logprob"]))


def dpo(model, batch: dict, rng: jax.Array, *, beta: float = 0.1):
  """DPO: −log σ(β·[(log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))]), summed over pairs.

  The reference log-probs `ref_chosen_logprob` / `ref_rejected_logprob` [b] are the frozen SFT model's,
  computed once before training, so the step never runs the reference model.
  """
  del rng
  chosen_b, rejected_b, reward_c_b, reward_r_b = _reference_rewards(model, batch, beta)
  loss_b = jax.nn.softplus(-(reward_c_b - reward_r_b))
  return jnp.sum(loss_b), jnp.float32(loss_b.shape[0]), _pair_metrics(chosen_b, rejected_b, reward_c_b, reward_r_b)


def ipo(model, batch: dict, rng: jax.Array, *, beta: float = 0.1):
  """IPO: (h − 1/(2β))² with h = (log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r)) on summed log-probs, a
  squared loss that pulls the log-ratio margin to 1/(2β) instead of pushing it without bound as DPO does."""
  del rng
  chosen_b, rejected_b, reward_c_b, reward_r_b = _reference_rewards(model, batch, beta)
  loss_b = ((reward_c_b - reward_r_b) / beta - 1 / (2 * beta)) ** 2
  return jnp.sum(loss_b), jnp.float32(loss_b.shape[0]), _pair_metrics(chosen_b, rejected_b, reward_c_b, reward_r_b)


def _mean_logprobs(model, batch: dict):
  """(log π(c), log π(r), per-token mean of each): the length-normalised log-probs SimPO and ORPO compare."""
  chosen_b, rejected_b, chosen_n_b, rejected_n_b = response_logprobs(model, batch)
  return chosen_b, rejected_b, chosen_b / jnp.maximum(chosen_n_b, 1), rejected_b / jnp.maximum(rejected_n_b, 1)


def simpo(model, batch: dict, rng: jax.Array, *, beta: float = 2.0, gamma: float = 0.5):
  """SimPO: −log σ(β·mean log π(c) − β·mean log π(r) − γ), no reference model: the reward is the policy's
  own length-normalised log-prob, and γ the margin the chosen reward must clear."""
  del rng
  chosen_b, rejected_b, mean_c_b, mean_r_b = _mean_logprobs(model, batch)
  reward_c_b, reward_r_b = beta * mean_c_b, beta * mean_r_b
  loss_b = jax.nn.softplus(-(reward_c_b - reward_r_b - gamma))
  return jnp.sum(loss_b), jnp.float32(loss_b.shape[0]), _pair_metrics(chosen_b, rejected_b, reward_c_b, reward_r_b)


def log_odds(mean_logprob_b: jax.Array) -> jax.Array:
  """log(p / (1 − p)) of p = exp(mean log-prob); p is kept below 1 so the odds stay finite."""
  mean_logprob_b = jnp.minimum(mean_logprob_b, -1e-6)
  return mean_logprob_b - jnp.log(-jnp.expm1(mean_logprob_b))


def orpo(model, batch: dict, rng: jax.Array, *, lam: float = 0.1):
  """ORPO: the chosen response's per-token NLL plus λ·(−log σ(log odds(c) − log odds(r))), the odds of a
  response being exp(its mean log-prob) against the rest; no reference model. Rewards are the log odds."""
  del rng
  chosen_b, rejected_b, mean_c_b, mean_r_b = _mean_logprobs(model, batch)
  odds_c_b, odds_r_b = log_odds(mean_c_b), log_odds(mean_r_b)
  odds_ratio_b = jax.nn.softplus(-(odds_c_b - odds_r_b))
  metrics = _pair_metrics(chosen_b, rejected_b, odds_c_b, odds_r_b) | {"odds_ratio_loss": jnp.sum(odds_ratio_b),
                                                                      "chosen_nll": -jnp.sum(mean_c_b)}
  loss_b = -mean_c_b + lam * odds_ratio_b
  return jnp.sum(loss_b), jnp.float32(loss_b.shape[0]), metrics


_SEQUENCE = ("tokens", "positions", "segment_ids")
_POLICY = (*_SEQUENCE, "targets", "loss_mask", "old_logprobs", "advantages", "ref_logprobs")
_PAIR = (*_SEQUENCE, "targets", "chosen_mask", "rejected_mask")  # one pair a row, its two replies' masks
_REFERENCE = ("ref_chosen_logprob", "ref_rejected_logprob")  # the frozen reference's log-probs, [b]

LOSSES = {
    "next_token": Loss(next_token, (*_SEQUENCE, "targets", "loss_mask")),
    "pairwise_bce": Loss(pairwise_bce, (*_SEQUENCE, "chosen_index", "rejected_index"), reads_logits=False,
                         scalar_head=True),
    # The reward model whose score adds its replies' mean log-prob (rm.logprob_weight > 0): it reads logits.
    "pairwise_bce_logprob": Loss(functools.partial(pairwise_bce, logprob_weight=1.0),
                                 (*_PAIR, "chosen_index", "rejected_index"), scalar_head=True),
    "ppo_clip": Loss(ppo_clip, _POLICY),
    "ppo_clip_value": Loss(ppo_clip_value, (*_POLICY, "old_values", "returns"), scalar_head=True),
    "dpo": Loss(dpo, (*_PAIR, *_REFERENCE)),
    "ipo": Loss(ipo, (*_PAIR, *_REFERENCE)),
    "simpo": Loss(simpo, _PAIR),
    "orpo": Loss(orpo, _PAIR),
}
PREFERENCE_LOSSES = ("dpo", "ipo", "simpo", "orpo")  # what `lmjax dpo` trains with (config.dpo.loss)


def check_batch_keys(loss_name: str, batch: dict) -> None:
  """Raises a clear error if `batch` lacks a key the named loss reads."""
  if loss_name not in LOSSES:
    raise KeyError(f"unknown loss {loss_name!r}; known: {', '.join(LOSSES)}")
  missing = [k for k in LOSSES[loss_name].batch_keys if k not in batch]
  if missing:
    raise KeyError(f"loss {loss_name!r} needs batch keys {missing}; the batch has {sorted(batch)}")
