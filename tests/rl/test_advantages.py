"""Advantage estimators: GAE against a hand-written loop (response tokens in the middle of a row), and
group-relative normalisation and its positive part."""
import numpy as np
import pytest

from lmjax.rl.advantages import gae, group_positive, group_relative


def gae_loop(rewards, values, mask, gamma, lam):
  """The textbook recursion, one row at a time, over the masked positions only."""
  advantages = np.zeros_like(rewards)
  for b in range(rewards.shape[0]):
    positions = [t for t in range(rewards.shape[1]) if mask[b, t]]
    next_value = next_advantage = 0.0
    for t in reversed(positions):
      delta = rewards[b, t] + gamma * next_value - values[b, t]
      next_advantage = delta + gamma * lam * next_advantage
      advantages[b, t], next_value = next_advantage, values[b, t]
  return advantages, (advantages + values) * mask


@pytest.mark.parametrize("gamma, lam", [(1.0, 1.0), (0.99, 0.95), (0.9, 0.0)])
def test_gae_equals_the_hand_written_loop(gamma, lam):
  rng = np.random.default_rng(0)
  rewards, values = rng.normal(size=(3, 9)).astype(np.float32), rng.normal(size=(3, 9)).astype(np.float32)
  mask = np.zeros((3, 9), np.float32)
  mask[0, 2:7], mask[1, 0:9], mask[2, 4:6] = 1, 1, 1  # prompt before, padding after
  rewards *= mask
  advantages, returns = gae(rewards, values, mask, gamma=gamma, lam=lam)
  want_advantages, want_returns = gae_loop(rewards, values, mask, gamma, lam)
  np.testing.assert_allclose(advantages, want_advantages, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(returns, want_returns, rtol=1e-5, atol=1e-6)


def test_gae_with_lambda_one_and_no_discount_is_return_minus_value():
  rewards = np.array([[0, 0, 0, 1.0]], np.float32)
  values = np.array([[0.2, 0.4, 0.6, 0.8]], np.float32)
  advantages, _ = gae(rewards, values, np.ones((1, 4)), gamma=1.0, lam=1.0)
  np.testing.assert_allclose(advantages, 1.0 - values, rtol=1e-6)


def test_group_relative_advantages_are_normalised_within_each_group():
  rewards = np.array([1, 0, 0, 1, 5, 5, 5, 9], np.float32)
  advantages = np.asarray(group_relative(rewards, 4))
  np.testing.assert_allclose(advantages[:4], [1, -1, -1, 1], atol=1e-4)
  np.testing.assert_allclose(advantages[4:].mean(), 0, atol=1e-6)
  assert advantages[7] > 0 > advantages[4] and np.allclose(advantages[4:7], advantages[4])
  np.testing.assert_allclose(group_relative(np.array([2, 2], np.float32), 2), [0, 0])  # all equal: no signal
  np.testing.assert_allclose(group_relative(rewards, 4, scale=False)[:4], [0.5, -0.5, -0.5, 0.5])


def test_group_positive_reinforces_only_replies_above_their_groups_mean():
  rewards = np.array([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0], np.float32)  # groups of 4: one right; all right
  relative, positive = np.asarray(group_relative(rewards, 4)), np.asarray(group_positive(rewards, 4))
  np.testing.assert_allclose(positive, np.maximum(relative, 0.0))
  assert positive[0] > 0 and np.all(positive[1:] == 0)  # the rare right reply; nothing pushed down
