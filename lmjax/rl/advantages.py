"""Advantage estimators, chosen by name (`ESTIMATORS`, one signature for all): GAE with a learned value (PPO's
critic), group-relative normalisation of rewards among the G samples of one prompt (GRPO-style, no critic), or
its positive part.

Shapes: b sequences, t positions; `mask_bt` is 1 on response tokens (the tokens the policy generated).
"""
import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np


def gae(rewards_bt, values_bt, mask_bt, *, gamma: float, lam: float):
  """(advantages, returns) [b, t] by generalised advantage estimation over each row's response tokens.

  δ_t = r_t + γ·V_{t+1} − V_t and A_t = δ_t + γλ·A_{t+1}, where t+1 is the next response token of the row
  (V = 0 after the last); positions outside the mask get 0 and do not break the recursion.
  """
  mask_bt = mask_bt.astype(jnp.float32)
  values_bt = values_bt * mask_bt

  def step(carry, inputs):
    next_value_b, next_advantage_b = carry
    reward_b, value_b, m_b = inputs
    delta_b = reward_b + gamma * next_value_b - value_b
    advantage_b = delta_b + gamma * lam * next_advantage_b
    # Outside the response, carry the later token's values through unchanged.
    carry = (jnp.where(m_b > 0, value_b, next_value_b), jnp.where(m_b > 0, advantage_b, next_advantage_b))
    return carry, advantage_b * m_b

  zeros_b = jnp.zeros(rewards_bt.shape[0], jnp.float32)
  inputs = (rewards_bt.T, values_bt.T, mask_bt.T)
  _, advantages_tb = jax.lax.scan(step, (zeros_b, zeros_b), inputs, reverse=True)
  advantages_bt = advantages_tb.T
  return advantages_bt, (advantages_bt + values_bt) * mask_bt


def group_relative(rewards_b, group_size: int, *, eps: float = 1e-6, scale: bool = True):
  """Per-sequence advantages [b]: each reward minus its group's mean (÷ the group's std if `scale`).

  Rows are grouped in order: rows [g·G, (g+1)·G) are the G samples of prompt g.
  """
  groups_gk = rewards_b.reshape(-1, group_size)
  centred_gk = groups_gk - groups_gk.mean(axis=1, keepdims=True)
  if scale:
    centred_gk = centred_gk / (groups_gk.std(axis=1, keepdims=True) + eps)
  return centred_gk.reshape(-1)


def group_positive(rewards_b, group_size: int, *, eps: float = 1e-6, scale: bool = True):
  """Group-relative advantages with the negative ones set to 0: reinforce the replies better than their
  group's mean, push nothing down ("sample many solutions, reinforce the correct ones").

  Without the push-down a weak policy's many wrong replies cannot spread its probability mass (raise its
  entropy), which is what made group_relative unstable at higher learning rates here.
  """
  return jnp.maximum(group_relative(rewards_b, group_size, eps=eps, scale=scale), 0.0)


def uniform_groups(rewards_b: np.ndarray, group_size: int) -> np.ndarray:
  """[groups] True where a group's (consecutive `group_size` rows') rewards are all equal: its group-relative
  advantages are all zero."""
  groups = np.asarray(rewards_b).reshape(-1, group_size)
  return groups.min(axis=1) == groups.max(axis=1)


def terminal_rewards(rewards_b: np.ndarray, loss_mask_bt: np.ndarray) -> np.ndarray:
  """[b, t] zeros with each reward at its row's last sampled target (GAE's sparse reward)."""
  rewards_bt = np.zeros(loss_mask_bt.shape, np.float32)
  has_reply = loss_mask_bt.any(axis=1)
  last = loss_mask_bt.shape[1] - 1 - np.argmax(loss_mask_bt[:, ::-1] > 0, axis=1)
  rows = np.flatnonzero(has_reply)
  rewards_bt[rows, last[rows]] = rewards_b[rows]
  return rewards_bt


def whiten(values_bt: np.ndarray, mask_bt: np.ndarray, eps: float = 1e-8) -> np.ndarray:
  """(x − mean) / std over the masked entries, 0 elsewhere: PPO's per-batch advantage normalisation."""
  selected = values_bt[mask_bt > 0]
  if selected.size == 0:
    return np.zeros_like(values_bt)
  return (values_bt - selected.mean()) / (selected.std() + eps) * (mask_bt > 0)


def gae_advantages(rewards_b, values_bt, mask_bt, rl_config):
  """GAE with the critic's values and the reward on each reply's last sampled token, whitened per batch."""
  advantages_bt, returns_bt = gae(jnp.asarray(terminal_rewards(rewards_b, mask_bt)), jnp.asarray(values_bt),
                                  jnp.asarray(mask_bt), gamma=rl_config.gamma, lam=rl_config.lam)
  return whiten(np.asarray(advantages_bt), mask_bt), np.asarray(returns_bt)


def per_sequence(estimate_b):
  """An estimator from one of one advantage per reply (from its group's rewards; no critic), on every token
  of the reply; the return is the reward on every token."""
  def estimate(rewards_b, values_bt, mask_bt, rl_config):
    del values_bt
    advantages_b = np.asarray(estimate_b(jnp.asarray(rewards_b), rl_config.group_size,
                                         scale=rl_config.scale_advantages))
    return advantages_b[:, None] * mask_bt, rewards_b[:, None] * mask_bt
  return estimate


@dataclasses.dataclass(frozen=True)
class Estimator:
  """`estimate(rewards [b], values [b, t], mask [b, t], rl config) -> (advantages [b, t], returns [b, t])`,
  the one signature of every estimator; `uses_values`: it needs a critic (a value head, `ppo_clip_value`)."""
  estimate: Callable
  uses_values: bool


ESTIMATORS = {"gae": Estimator(gae_advantages, uses_values=True),
              "group_relative": Estimator(per_sequence(group_relative), uses_values=False),
              "group_positive": Estimator(per_sequence(group_positive), uses_values=False)}
