"""Advantage estimators, chosen by name: GAE with a learned value (PPO's critic), group-relative
normalisation of rewards among the G samples of one prompt (GRPO-style, no critic), or its positive part.

Shapes: b sequences, t positions; `mask_bt` is 1 on response tokens (the tokens the policy generated).
"""
import jax
import jax.numpy as jnp


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


ESTIMATORS = {"gae": gae, "group_relative": group_relative, "group_positive": group_positive}
# Estimators of one advantage per sequence from the group's rewards (no critic).
SEQUENCE_ESTIMATORS = ("group_relative", "group_positive")
