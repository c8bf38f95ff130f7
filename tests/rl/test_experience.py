"""Rollouts become training rows whose loss mask is exactly the sampled tokens; rewards, whitening and the
critic's explained variance; and a few iterations of group-relative PPO through the real train step raise
the reward of a toy task."""
import functools

import jax
import ml_collections
import numpy as np
import pytest
from flax import nnx

from lmjax import losses
from lmjax.infer.engine import Reply, generate
from lmjax.infer.sampler import SamplingParams
from lmjax.rl import experience
from lmjax.rl.advantages import ESTIMATORS, terminal_rewards, whiten
from lmjax.train.base_run import fresh_state
from lmjax.train.loop import global_batch
from lmjax.train.setup import build_train_setup
from lmjax.train.step import make_train_step
from tests.conftest import tiny_config


def test_rows_supervise_exactly_the_sampled_reply_tokens():
  rollouts = [Reply(prompt=(1, 2, 3), reply=(10, 11, 90, 91, 12), generated=(True, True, False, False, True),
                      tool_calls=1),
              Reply(prompt=(1, 4), reply=(20,), generated=(True,), tool_calls=0)]
  rows = experience.sequence_rows(rollouts, seq_len=8)
  np.testing.assert_array_equal(rows["tokens"][0], [1, 2, 3, 10, 11, 90, 91, 0])
  np.testing.assert_array_equal(rows["targets"][0], [2, 3, 10, 11, 90, 91, 12, 0])
  np.testing.assert_array_equal(rows["loss_mask"][0], [0, 0, 1, 1, 0, 0, 1, 0])  # the tool output is not trained
  np.testing.assert_array_equal(rows["loss_mask"][1], [0, 1, 0, 0, 0, 0, 0, 0])
  np.testing.assert_array_equal(rows["segment_ids"][1], [1, 1, 0, 0, 0, 0, 0, 0])
  np.testing.assert_array_equal(rows["positions"][0][:7], np.arange(7))


def test_a_row_longer_than_the_sequence_is_cut_at_the_end():
  rollout = Reply(prompt=(1, 2), reply=tuple(range(10, 20)), generated=(True,) * 10, tool_calls=0)
  rows = experience.sequence_rows([rollout], seq_len=5)
  np.testing.assert_array_equal(rows["targets"][0], [2, 10, 11, 12, 13])
  np.testing.assert_array_equal(rows["loss_mask"][0], [0, 1, 1, 1, 1])


def test_terminal_reward_sits_on_the_last_sampled_token():
  mask = np.array([[0, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0]], np.float32)
  rewards = terminal_rewards(np.array([2.0, 5.0], np.float32), mask)
  np.testing.assert_array_equal(rewards, [[0, 0, 0, 0, 2, 0], [0, 0, 0, 0, 0, 0]])


def test_whitening_and_explained_variance_use_only_masked_tokens():
  mask = np.array([[1, 1, 0], [1, 1, 0]], np.float32)
  values = np.array([[1.0, 2.0, 100.0], [3.0, 4.0, -100.0]])
  white = whiten(values, mask)
  assert abs(white[mask > 0].mean()) < 1e-6 and abs(white[mask > 0].std() - 1) < 1e-4 and (white[mask == 0] == 0).all()
  assert experience.explained_variance(values, values, mask) == 1.0
  assert experience.explained_variance(np.zeros_like(values), values, mask) == 0.0


def _toy_rl(tokens_workdir, critic: bool, iterations: int = 12):
  """Rewards per iteration and the last step's metrics of PPO on a toy task: the reward is the share of sampled
  tokens with an even id, about 0.5 at random init. Group-relative advantages, or GAE with a value head."""
  config = tiny_config(tokens_workdir)
  config.train.update(steps=40, batch_size=16, seq_len=16)
  config.optim.update(lr=2e-2, weight_decay=0.0)
  config.schedule.update(warmup_steps=0, decay="constant")
  config.mesh.fsdp = 1
  setup = build_train_setup(config, devices=jax.devices()[:1], scalar_head=critic)
  state = fresh_state(setup, setup.init().params)
  loss = functools.partial(losses.ppo_clip_value if critic else losses.ppo_clip, clip_eps=0.2, kl_coef=0.0)
  step = make_train_step(setup.graphdef, loss, setup.optimizer, setup.shardings, batch_sharding=setup.batch_sharding)
  score = experience.make_scorer(setup.graphdef, with_values=critic)
  place = functools.partial(global_batch, setup)
  group, rewards, history = 8, [], []
  rl_config = ml_collections.ConfigDict(dict(group_size=group, scale_advantages=True, gamma=1.0, lam=0.95))
  policy_graphdef = nnx.graphdef(nnx.eval_shape(lambda: nnx.merge(setup.graphdef, state.params).backbone)) \
      if critic else setup.graphdef
  for iteration in range(iterations):
    params = state.params["backbone"] if critic else state.params
    prompts = [[1, 2 + p] for p in range(2) for _ in range(group)]
    replies = generate(policy_graphdef, params, prompts, SamplingParams(max_new_tokens=8, temperature=1.0,
                                                                        seed=iteration))
    reward_b = np.array([np.mean([t % 2 == 0 for t in r]) for r in replies], np.float32)
    rewards.append(reward_b.mean())
    rows = experience.sequence_rows([Reply(tuple(p), tuple(r), (True,) * len(r), 0)
                                     for p, r in zip(prompts, replies)], seq_len=16)
    rows["old_logprobs"], values = experience.score_in_chunks(score, state.params, rows, 16, place)
    rows["ref_logprobs"], mask = rows["old_logprobs"], rows["loss_mask"]
    rows["old_values"] = values * mask
    estimator = ESTIMATORS["gae" if critic else "group_relative"]
    rows["advantages"], rows["returns"] = estimator.estimate(reward_b, rows["old_values"], mask, rl_config)
    for _ in range(3):  # three updates on each batch: the later ones are off-policy and clipped
      state, metrics = step(state, place(rows), jax.random.key(0))
    history.append({k: float(v) for k, v in metrics.items()})
  return rewards, history


def test_group_relative_ppo_through_the_train_step_raises_a_toy_reward(tokens_workdir):
  rewards, _ = _toy_rl(tokens_workdir, critic=False)
  assert np.mean(rewards[:2]) < 0.65
  assert np.mean(rewards[-3:]) > np.mean(rewards[:2]) + 0.2, rewards


def test_ppo_with_a_critic_raises_the_toy_reward_and_its_value_loss_falls(tokens_workdir):
  rewards, history = _toy_rl(tokens_workdir, critic=True)
  assert np.mean(rewards[-3:]) > np.mean(rewards[:2]) + 0.1, rewards
  assert np.mean([h["value_loss"] for h in history[-3:]]) < np.mean([h["value_loss"] for h in history[:2]]) / 2

@pytest.mark.parametrize("logprob_weight", [0.0, 0.5])
def test_the_reward_model_scores_a_rollout_as_it_scored_the_same_reply_in_training(tokens_workdir, logprob_weight):
  from lmjax import chat
  from lmjax.data.pairs_pipeline import pair_row
  from lmjax.data.tokenizer import Tokenizer
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  config = tiny_config(tokens_workdir)
  config.mesh.fsdp = 1
  setup = build_train_setup(config, devices=jax.devices()[:1], scalar_head=True)
  params = setup.init().params
  params["head"] = jax.random.normal(jax.random.key(3), params["head"].shape)  # a head that is not zero
  pair = {"prompt": "What is 2+2?", "chosen": "Answer: 4", "rejected": "I don't know."}
  row = pair_row(pair, tok, seq_len=64)
  batch = {k: jax.numpy.asarray(v[None]) for k, v in row.items()}
  chosen_reward = _pair_rewards(setup.graphdef, params, batch, logprob_weight)[0]
  prompt = chat.render_prompt([{"role": "user", "content": pair["prompt"]}], tok)
  reply = tok.encode("Answer: 4") + [chat.chat_tokens(tok).assistant_end]
  rows = experience.reward_model_rows([Reply(tuple(prompt), tuple(reply), (True,) * len(reply), 0)], seq_len=64)
  score = experience.make_reward_scorer(setup.graphdef, logprob_weight)(
      params, {k: jax.numpy.asarray(v) for k, v in rows.items()})
  np.testing.assert_allclose(score[0], chosen_reward, rtol=1e-5)


def _pair_rewards(graphdef, params, batch, logprob_weight):
  """The chosen reply's reward as the training loss computes it (`reply_reward` inside `pairwise_bce`)."""
  from lmjax.losses import reply_reward, token_logprobs
  logits, scalars = nnx.merge(graphdef, params)(batch["tokens"], batch["positions"], batch["segment_ids"])
  return reply_reward(scalars, token_logprobs(logits, batch["targets"]), batch["chosen_index"],
                      batch["chosen_mask"], logprob_weight)
