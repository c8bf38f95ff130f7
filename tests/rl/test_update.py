"""What RL trains on with rl.skip_uniform_groups: only the groups whose rewards differ, and a short last
minibatch padded with rows that change neither the loss nor its normaliser."""
import jax
import numpy as np
from flax import nnx

from lmjax import losses
from lmjax.model import ModelConfig, Transformer
from lmjax.rl.update import _padded, drop_uniform_groups

CFG = ModelConfig(vocab_size=31, num_layers=1, embed_dim=16, num_heads=2, num_kv_heads=1, mlp_dim=32)


def _rows(n: int, t: int = 7, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  rows = {"tokens": rng.integers(0, 31, (n, t)).astype(np.int32),
          "targets": rng.integers(0, 31, (n, t)).astype(np.int32),
          "positions": np.tile(np.arange(t, dtype=np.int32), (n, 1)), "segment_ids": np.ones((n, t), np.int32),
          "loss_mask": (rng.random((n, t)) > 0.4).astype(np.float32),
          "advantages": rng.normal(size=(n, t)).astype(np.float32)}
  rows["old_logprobs"] = rows["ref_logprobs"] = rng.normal(-3, 0.5, (n, t)).astype(np.float32)
  return rows


def test_only_the_groups_whose_rewards_differ_are_kept_in_order():
  rows = {"tokens": np.arange(6)[:, None], "loss_mask": np.ones((6, 1), np.float32)}
  kept = drop_uniform_groups(rows, np.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0]), group_size=2)
  np.testing.assert_array_equal(kept["tokens"][:, 0], [2, 3])
  assert len(drop_uniform_groups(rows, np.zeros(6), group_size=3)["tokens"]) == 0


def test_a_padded_minibatch_has_the_loss_and_normaliser_of_its_rows():
  model, rows = Transformer(CFG, rngs=nnx.Rngs(0)), _rows(3)
  padded = _padded(rows, 8)
  assert all(len(v) == 8 for v in padded.values()) and padded["tokens"].dtype == np.int32
  (loss, weight, metrics), (padded_loss, padded_weight, padded_metrics) = (
      losses.ppo_clip(model, batch, jax.random.key(0), clip_eps=0.2, kl_coef=0.1) for batch in (rows, padded))
  np.testing.assert_allclose(padded_loss, loss, rtol=1e-5)
  assert padded_weight == weight and np.isfinite(padded_metrics["entropy"])
