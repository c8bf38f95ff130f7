"""Every loss against a small NumPy reference: next-token CE with masks, the reward model's pairwise BCE,
PPO's clipped surrogate (flat outside the trust region in the right direction; REINFORCE on fresh samples),
the KL penalty and the clipped value loss; the preference losses DPO, IPO, SimPO and ORPO (the last two with
no reference log-probs at all)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lmjax import losses
from lmjax.model import ModelConfig, Transformer
from lmjax.model.scalar_head import WithScalarHead

CFG = ModelConfig(vocab_size=31, num_layers=1, embed_dim=16, num_heads=2, num_kv_heads=1, mlp_dim=32)
B, T = 3, 7


def _batch(seed=0):
  rng = np.random.default_rng(seed)
  return {"tokens": rng.integers(0, 31, (B, T)).astype(np.int32), "targets": rng.integers(0, 31, (B, T)).astype(np.int32),
          "positions": np.tile(np.arange(T, dtype=np.int32), (B, 1)), "segment_ids": np.ones((B, T), np.int32),
          "loss_mask": (rng.random((B, T)) > 0.4).astype(np.float32)}


def _log_softmax(logits):
  logits = logits - logits.max(-1, keepdims=True)
  return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def test_next_token_equals_numpy_cross_entropy_and_ignores_masked_tokens():
  model, batch = Transformer(CFG, rngs=nnx.Rngs(0)), _batch()
  loss_sum, weight, _ = losses.next_token(model, batch, None)
  logits = np.asarray(model(batch["tokens"], batch["positions"], batch["segment_ids"]))
  nll = -np.take_along_axis(_log_softmax(logits), batch["targets"][..., None], -1)[..., 0]
  np.testing.assert_allclose(loss_sum, (nll * batch["loss_mask"]).sum(), rtol=1e-5)
  assert weight == batch["loss_mask"].sum()
  other = dict(batch, targets=np.where(batch["loss_mask"] > 0, batch["targets"], (batch["targets"] + 5) % 31))
  assert losses.next_token(model, other, None)[0] == loss_sum  # masked targets contribute exactly zero


def _reward_model_and_pairs(chosen_index, rejected_index):
  """A reward model with a non-zero head, and a batch of one pair a row (chosen: positions 0-2, rejected 3-6)."""
  model = WithScalarHead(CFG, Transformer(CFG, rngs=nnx.Rngs(0)))
  model.head[...] = jax.random.normal(jax.random.key(1), (CFG.embed_dim,))
  batch = _batch()
  batch["segment_ids"] = np.array([[1, 1, 1, 2, 2, 2, 2]] * B, np.int32)
  batch["chosen_index"], batch["rejected_index"] = np.array(chosen_index, np.int32), np.array(rejected_index, np.int32)
  return model, batch


def test_pairwise_bce_equals_numpy_bradley_terry():
  model, batch = _reward_model_and_pairs([2, 1, 2], [6, 5, 3])
  loss_sum, pairs, metrics = losses.pairwise_bce(model, batch, None)
  _, scores = model(batch["tokens"], batch["positions"], batch["segment_ids"])
  scores = np.asarray(scores)
  margin = scores[np.arange(B), batch["chosen_index"]] - scores[np.arange(B), batch["rejected_index"]]
  np.testing.assert_allclose(loss_sum, np.log1p(np.exp(-margin)).sum(), rtol=1e-5)
  assert pairs == B and metrics["accuracy"] == (margin > 0).sum()


def test_pairwise_bce_with_logprob_weight_adds_each_replys_mean_logprob():
  model, batch = _reward_model_and_pairs([2, 2, 2], [6, 6, 6])
  batch["chosen_mask"] = np.array([[0, 1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]], np.float32)
  batch["rejected_mask"] = np.array([[0, 0, 0, 1, 1, 1, 0]] * B, np.float32)
  weight = 0.7
  loss_sum, _, metrics = losses.pairwise_bce(model, batch, None, logprob_weight=weight)
  logits, scores = (np.asarray(a) for a in model(batch["tokens"], batch["positions"], batch["segment_ids"]))
  logp = np.take_along_axis(_log_softmax(logits), batch["targets"][..., None], -1)[..., 0]

  def reward(side):
    mask = batch[f"{side}_mask"]
    mean = (logp * mask).sum(1) / np.maximum(mask.sum(1), 1)  # an empty mask adds nothing
    return scores[np.arange(B), batch[f"{side}_index"]] + weight * mean

  margin = reward("chosen") - reward("rejected")
  np.testing.assert_allclose(loss_sum, np.log1p(np.exp(-margin)).sum(), rtol=1e-5)
  assert metrics["accuracy"] == (margin > 0).sum()
  other = dict(batch, targets=np.where(batch["chosen_mask"] + batch["rejected_mask"] > 0, batch["targets"],
                                       (batch["targets"] + 5) % 31))
  np.testing.assert_allclose(losses.pairwise_bce(model, other, None, logprob_weight=weight)[0], loss_sum,
                             rtol=1e-6)  # targets outside the replies' masks contribute nothing


def _policy_batch(logprobs, old, advantages):
  shape = np.shape(logprobs)
  return {"loss_mask": np.ones(shape, np.float32), "old_logprobs": np.asarray(old, np.float32),
          "advantages": np.asarray(advantages, np.float32), "ref_logprobs": np.asarray(logprobs, np.float32)}


@pytest.mark.parametrize("advantage", [1.5, -0.7])
def test_ppo_surrogate_is_unclipped_inside_the_trust_region(advantage):
  old = np.log(np.full((1, 5), 0.3, np.float32))
  logprobs = old + np.array([[-0.15, -0.05, 0.0, 0.05, 0.15]], np.float32)  # ratios within 1 ± 0.2
  per_token, _ = losses.policy_terms(jnp.asarray(logprobs), _policy_batch(logprobs, old, np.full((1, 5), advantage)),
                                     clip_eps=0.2, kl_coef=0.0)
  np.testing.assert_allclose(per_token, -np.exp(logprobs - old) * advantage, rtol=1e-6)


@pytest.mark.parametrize("advantage, log_ratio, flat", [
    (1.0, 0.5, True),     # better than expected and already much likelier: no further push
    (1.0, -0.5, False),   # better than expected but now less likely: keep pushing up
    (-1.0, -0.5, True),   # worse than expected and already much less likely: no further push
    (-1.0, 0.5, False),   # worse than expected but now likelier: keep pushing down
])
def test_ppo_surrogate_is_flat_outside_the_trust_region_in_the_right_direction(advantage, log_ratio, flat):
  old = np.zeros((1, 1), np.float32)
  batch = _policy_batch(old, old, [[advantage]])
  grad = jax.grad(lambda lp: losses.policy_terms(lp, batch, clip_eps=0.2, kl_coef=0.0)[0].sum())(
      jnp.full((1, 1), log_ratio))
  assert (float(grad[0, 0]) == 0.0) == flat


def test_one_ppo_update_on_fresh_samples_has_the_reinforce_gradient():
  rng = np.random.default_rng(0)
  logprobs, advantages = np.log(rng.uniform(0.1, 0.9, (4, 6))).astype(np.float32), rng.normal(size=(4, 6))
  batch = _policy_batch(logprobs, logprobs, advantages)  # old policy = current policy
  ppo_grad = jax.grad(lambda lp: losses.policy_terms(lp, batch, clip_eps=0.2, kl_coef=0.0)[0].sum())(jnp.asarray(logprobs))
  reinforce_grad = jax.grad(lambda lp: -(lp * advantages).sum())(jnp.asarray(logprobs))
  np.testing.assert_allclose(ppo_grad, reinforce_grad, rtol=1e-6)


def test_kl_penalty_is_the_k3_estimator_zero_at_the_reference():
  logprobs = np.log(np.array([[0.2, 0.5, 0.9]], np.float32))
  ref = np.log(np.array([[0.3, 0.5, 0.6]], np.float32))
  batch = dict(_policy_batch(logprobs, logprobs, np.zeros((1, 3))), ref_logprobs=ref)
  per_token, metrics = losses.policy_terms(jnp.asarray(logprobs), batch, clip_eps=0.2, kl_coef=2.0)
  k3 = np.exp(ref - logprobs) - (ref - logprobs) - 1
  np.testing.assert_allclose(per_token, 2.0 * k3, rtol=1e-5)
  assert k3[0, 1] == 0 and (k3 >= 0).all() and metrics["kl_ref"] == pytest.approx(k3.sum(), rel=1e-5)


def test_clipped_value_loss_equals_numpy():
  model = WithScalarHead(CFG, Transformer(CFG, rngs=nnx.Rngs(0)))
  model.head[...] = jax.random.normal(jax.random.key(2), (CFG.embed_dim,))
  batch = _batch()
  rng = np.random.default_rng(3)
  _, values = model(batch["tokens"], batch["positions"], batch["segment_ids"])
  logits, _ = model(batch["tokens"], batch["positions"], batch["segment_ids"])
  logprobs = np.take_along_axis(_log_softmax(np.asarray(logits)), batch["targets"][..., None], -1)[..., 0]
  batch.update(old_logprobs=logprobs, ref_logprobs=logprobs, advantages=np.zeros((B, T), np.float32),
               old_values=np.asarray(values) + rng.normal(0, 0.5, (B, T)).astype(np.float32),
               returns=rng.normal(size=(B, T)).astype(np.float32))
  loss_sum, weight, metrics = losses.ppo_clip_value(model, batch, None, value_clip=0.2, value_coef=0.5)
  v, old, ret, mask = np.asarray(values), batch["old_values"], batch["returns"], batch["loss_mask"]
  clipped = old + np.clip(v - old, -0.2, 0.2)
  value_loss = (0.5 * np.maximum((v - ret) ** 2, (clipped - ret) ** 2) * mask).sum()
  np.testing.assert_allclose(metrics["value_loss"], value_loss, rtol=1e-5)
  np.testing.assert_allclose(loss_sum, 0.5 * value_loss, rtol=1e-4, atol=1e-5)  # A = 0 and π = π_old = π_ref


def test_every_loss_declares_the_batch_keys_it_reads():
  with pytest.raises(KeyError, match="needs batch keys \\['chosen_index', 'rejected_index'\\]"):
    losses.check_batch_keys("pairwise_bce", _batch())
  losses.check_batch_keys("next_token", _batch())


def _pair_batch(seed=0):
  """Rows of two responses with disjoint random reply masks and random reference log-probs."""
  batch, rng = _batch(seed), np.random.default_rng(seed + 10)
  side = rng.integers(0, 3, (B, T))  # 0: prompt or padding, 1: chosen reply, 2: rejected reply
  side[:, 0], side[:, 1] = 1, 2  # every reply has a token
  batch.update(chosen_mask=(side == 1).astype(np.float32), rejected_mask=(side == 2).astype(np.float32),
               ref_chosen_logprob=rng.normal(-8, 2, B).astype(np.float32),
               ref_rejected_logprob=rng.normal(-8, 2, B).astype(np.float32))
  del batch["loss_mask"]
  return batch


def _numpy_responses(model, batch):
  """(summed chosen, summed rejected, chosen length, rejected length) log-probs, [b] each, in NumPy."""
  logits = np.asarray(model(batch["tokens"], batch["positions"], batch["segment_ids"]), np.float64)
  logp = np.take_along_axis(_log_softmax(logits), batch["targets"][..., None], -1)[..., 0]
  c, r = batch["chosen_mask"], batch["rejected_mask"]
  return (logp * c).sum(1), (logp * r).sum(1), c.sum(1), r.sum(1)


def _log_sigmoid(x):
  return -np.log1p(np.exp(-x))


def _numpy_preference(name, model, batch, **kw):
  """The loss per pair of each preference objective, written from its paper's formula."""
  pc, pr, nc, nr = _numpy_responses(model, batch)
  h = (pc - batch["ref_chosen_logprob"]) - (pr - batch["ref_rejected_logprob"])
  if name == "dpo":
    return -_log_sigmoid(kw["beta"] * h)
  if name == "ipo":
    return (h - 1 / (2 * kw["beta"])) ** 2
  if name == "simpo":
    return -_log_sigmoid(kw["beta"] * pc / nc - kw["beta"] * pr / nr - kw["gamma"])
  odds = lambda mean: mean - np.log1p(-np.exp(mean))
  return -pc / nc - kw["lam"] * _log_sigmoid(odds(pc / nc) - odds(pr / nr))


PREFERENCE = [("dpo", dict(beta=0.1)), ("dpo", dict(beta=0.5)), ("ipo", dict(beta=0.1)), ("ipo", dict(beta=1.0)),
              ("simpo", dict(beta=2.0, gamma=0.5)), ("orpo", dict(lam=0.1)), ("orpo", dict(lam=1.0))]


@pytest.mark.parametrize("name, kw", PREFERENCE)
def test_preference_loss_equals_numpy_and_ignores_tokens_outside_the_replies(name, kw):
  model, batch = Transformer(CFG, rngs=nnx.Rngs(0)), _pair_batch()
  loss_sum, pairs, _ = losses.LOSSES[name].fn(model, batch, None, **kw)
  np.testing.assert_allclose(loss_sum, _numpy_preference(name, model, batch, **kw).sum(), rtol=2e-5)
  assert pairs == B
  outside = (batch["chosen_mask"] + batch["rejected_mask"]) == 0
  other = dict(batch, targets=np.where(outside, (batch["targets"] + 5) % 31, batch["targets"]))
  assert outside.any() and losses.LOSSES[name].fn(model, other, None, **kw)[0] == loss_sum


@pytest.mark.parametrize("name", ["simpo", "orpo"])
def test_reference_free_losses_need_no_reference_log_probs(name):
  model, batch = Transformer(CFG, rngs=nnx.Rngs(0)), _pair_batch()
  free = {k: v for k, v in batch.items() if not k.startswith("ref_")}
  losses.check_batch_keys(name, free)
  assert losses.LOSSES[name].fn(model, free, None)[0] == losses.LOSSES[name].fn(model, batch, None)[0]


@pytest.mark.parametrize("name", ["dpo", "ipo"])
def test_dpo_and_ipo_declare_the_reference_log_probs(name):
  batch = {k: v for k, v in _pair_batch().items() if not k.startswith("ref_")}
  with pytest.raises(KeyError, match="ref_chosen_logprob"):
    losses.check_batch_keys(name, batch)


def test_dpo_at_its_reference_is_log_2_with_every_pair_a_tie():
  model, batch = Transformer(CFG, rngs=nnx.Rngs(0)), _pair_batch()
  pc, pr, _, _ = _numpy_responses(model, batch)
  at_reference = dict(batch, ref_chosen_logprob=pc.astype(np.float32), ref_rejected_logprob=pr.astype(np.float32))
  loss_sum, pairs, metrics = losses.dpo(model, at_reference, None, beta=0.1)
  np.testing.assert_allclose(loss_sum / pairs, np.log(2), rtol=1e-5)
  assert metrics["accuracy"] == pytest.approx(0.5 * B)  # ties count half
  np.testing.assert_allclose(metrics["chosen_logprob"], pc.sum(), rtol=1e-5)


def test_dpo_accuracy_and_margin_count_the_implicit_rewards():
  model, batch = Transformer(CFG, rngs=nnx.Rngs(0)), _pair_batch()
  pc, pr, _, _ = _numpy_responses(model, batch)
  margin = 0.1 * ((pc - batch["ref_chosen_logprob"]) - (pr - batch["ref_rejected_logprob"]))
  _, _, metrics = losses.dpo(model, batch, None, beta=0.1)
  assert metrics["accuracy"] == (margin > 0).sum() and 0 < (margin > 0).sum() < B  # the seed gives both signs
  np.testing.assert_allclose(metrics["margin"], margin.sum(), rtol=1e-4)
