"""From scored rollouts to the rows the `ppo_clip` losses train on.

A row is one prompt + reply, left-aligned and padded to `seq_len`: tokens, targets (shifted by one),
positions, segment ids (1 on real tokens) and the loss mask, 1 exactly where the target is a token the policy
sampled (tool outputs, the prompt and padding get 0). Rewards are per reply; for GAE they sit on the reply's
last sampled token (`lmjax.rl.advantages.terminal_rewards`).
"""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lmjax.losses import reply_reward, token_logprobs


def sequence_rows(rollouts, seq_len: int, pad_id: int = 0) -> dict[str, np.ndarray]:
  """The [n, seq_len] arrays of the rollouts; a prompt + reply longer than seq_len + 1 is cut at the end."""
  n = len(rollouts)
  rows = {k: np.zeros((n, seq_len), np.int32) for k in ("tokens", "targets", "positions", "segment_ids")}
  rows["tokens"][:], rows["targets"][:] = pad_id, pad_id
  rows["loss_mask"] = np.zeros((n, seq_len), np.float32)
  for b, r in enumerate(rollouts):
    ids = np.array(r.prompt + r.reply, np.int32)[: seq_len + 1]
    sampled = np.array([False] * len(r.prompt) + list(r.generated))[: seq_len + 1]
    length = len(ids) - 1
    rows["tokens"][b, :length], rows["targets"][b, :length] = ids[:-1], ids[1:]
    rows["positions"][b, :length] = np.arange(length)
    rows["segment_ids"][b, :length] = 1
    rows["loss_mask"][b, :length] = sampled[1:]
  return rows


def explained_variance(values_bt: np.ndarray, returns_bt: np.ndarray, mask_bt: np.ndarray) -> float:
  """1 − Var(returns − values) / Var(returns) over masked tokens: how much of the return the critic predicts."""
  m = mask_bt > 0
  variance = returns_bt[m].var() if m.any() else 0.0
  return float(1 - (returns_bt[m] - values_bt[m]).var() / variance) if variance > 0 else float("nan")


def make_scorer(graphdef, *, with_values: bool):
  """A jitted `score(params, rows) -> (logprobs [b, t], values [b, t])`: the values of the model's scalar head
  if `with_values`, else zeros (one signature for a policy with or without a critic)."""
  @jax.jit
  def score(params, rows):
    outputs = nnx.merge(graphdef, params)(rows["tokens"], rows["positions"], rows["segment_ids"])
    logits_btv, values_bt = outputs if with_values else (outputs, None)
    logprobs_bt = token_logprobs(logits_btv, rows["targets"])
    return logprobs_bt, jnp.zeros_like(logprobs_bt) if values_bt is None else values_bt
  return score


def reward_model_rows(rollouts, seq_len: int, pad_id: int = 0) -> dict[str, np.ndarray]:
  """Each whole prompt + reply as the reward model reads it (`sequence_rows`, whose loss mask marks the
  sampled reply tokens), with `last_index`, where its head is read."""
  rows = sequence_rows(rollouts, seq_len, pad_id)
  for b, r in enumerate(rollouts):  # the last token too: the reward model reads every token, predicting none
    ids = (r.prompt + r.reply)[:seq_len]
    rows["tokens"][b, :len(ids)], rows["positions"][b, :len(ids)] = ids, np.arange(len(ids))
    rows["segment_ids"][b, :len(ids)] = 1
  rows["last_index"] = rows["segment_ids"].sum(axis=1).astype(np.int32) - 1
  return rows


def make_reward_scorer(graphdef, logprob_weight: float = 0.0):
  """A jitted `score(params, rows) -> [b]`: a reward model's `reply_reward` of each row (its head at
  `last_index`, plus `logprob_weight` × the mean log-prob of the reply's sampled tokens)."""
  @jax.jit
  def score(params, rows):
    logits_btv, scalars_bt = nnx.merge(graphdef, params)(rows["tokens"], rows["positions"], rows["segment_ids"])
    logprobs_bt = token_logprobs(logits_btv, rows["targets"]) if logprob_weight else None
    return reply_reward(scalars_bt, logprobs_bt, rows["last_index"], rows["loss_mask"], logprob_weight)
  return score


def score_in_chunks(score, params, rows: dict, chunk: int, place,
                    keys=("tokens", "positions", "segment_ids", "targets")) -> tuple[np.ndarray, ...]:
  """`score` over `rows` `chunk` rows at a time (`place` puts a chunk on the mesh); outputs concatenated."""
  outs = []
  for start in range(0, len(rows["tokens"]), chunk):
    out = score(params, place({k: rows[k][start:start + chunk] for k in keys}))
    outs.append(jax.tree.map(np.asarray, out if isinstance(out, tuple) else (out,)))
  return tuple(np.concatenate(parts) for parts in zip(*outs))

