"""The "inside" view's numbers: the logit lens of the last layer is the model's own prediction
(`lmjax.model.logits`), one head's attention is the NumPy softmax(q·kᵀ/√h) of that head's projections, the
first residual norm is the embeddings', and a scanned model gives the same numbers as its per-layer twin."""
import numpy as np
import pytest
from flax import nnx

from lmjax.model import forward, stacking
from lmjax.serve.inside import look_inside
from tests.conftest import tiny_config

IDS = [1, 17, 300, 42, 9, 511, 3, 77]


@pytest.fixture(scope="module")
def model():
  config = tiny_config()  # 2 layers, d=64, 4 query heads sharing 2 key/value heads
  params = forward.init_params(config, seed=0)
  return config, params, look_inside(forward.model_definition(config)[0], params, IDS, top_k=5)


def _softmax(x, axis=-1):
  e = np.exp(x - x.max(axis=axis, keepdims=True))
  return e / e.sum(axis=axis, keepdims=True)


def _rope(x_th, theta):
  half = x_th.shape[-1] // 2
  angles = np.arange(len(x_th))[:, None] * theta ** (-np.arange(half) / half)
  x1, x2 = x_th[:, :half], x_th[:, half:]
  return np.concatenate([x1 * np.cos(angles) - x2 * np.sin(angles), x2 * np.cos(angles) + x1 * np.sin(angles)], -1)


def test_the_last_layers_logit_lens_is_the_models_prediction(model):
  config, params, inside = model
  probs_tv = _softmax(np.asarray(forward.logits(config, params, [IDS]))[0])
  assert inside.lens_ids_ltk.shape == (config.model.num_layers + 1, len(IDS), 5)
  np.testing.assert_array_equal(inside.lens_ids_ltk[-1], np.argsort(-probs_tv, axis=-1)[:, :5])
  np.testing.assert_allclose(inside.lens_probs_ltk[-1], -np.sort(-probs_tv, axis=-1)[:, :5], rtol=1e-4)
  assert not np.array_equal(inside.lens_ids_ltk[0], inside.lens_ids_ltk[-1])  # earlier layers predict otherwise


@pytest.mark.parametrize("head", [0, 3])
def test_a_heads_attention_is_the_softmax_of_its_queries_and_keys(model, head):
  config, params, inside = model
  p, m = nnx.to_pure_dict(params), config.model
  x_td = np.asarray(p["embed"])[IDS]
  normed_td = x_td / np.sqrt((x_td ** 2).mean(-1, keepdims=True) + m.norm_eps) * np.asarray(
      p["blocks"][0]["attn_norm"]["scale"])
  kv_head = head // (m.num_heads // m.num_kv_heads)
  q_th = _rope(normed_td @ np.asarray(p["blocks"][0]["attn"]["q"])[:, head], m.rope_theta)
  k_th = _rope(normed_td @ np.asarray(p["blocks"][0]["attn"]["k"])[:, kv_head], m.rope_theta)
  scores_ts = q_th @ k_th.T / np.sqrt(q_th.shape[-1])
  expected_ts = _softmax(np.where(np.tril(np.ones_like(scores_ts, bool)), scores_ts, -np.inf))
  np.testing.assert_allclose(inside.attention_lnts[0, head], expected_ts, atol=2e-6)
  np.testing.assert_allclose(inside.residual_norm_lt[0], np.linalg.norm(x_td, axis=-1), rtol=1e-5)


def test_a_scanned_model_looks_the_same_inside(model):
  config, params, inside = model
  scanned = config.copy_and_resolve_references()
  scanned.model.scan_layers = True
  stacked = forward.as_state(scanned, stacking.stack_layers(nnx.to_pure_dict(params)))
  other = look_inside(forward.model_definition(scanned)[0], stacked, IDS, top_k=5)
  np.testing.assert_allclose(other.attention_lnts, inside.attention_lnts, atol=1e-6)
  np.testing.assert_allclose(other.residual_norm_lt, inside.residual_norm_lt, rtol=1e-5)
  np.testing.assert_array_equal(other.lens_ids_ltk, inside.lens_ids_ltk)
