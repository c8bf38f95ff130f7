"""Scanned layers and remat policies: the scanned model computes what the per-layer one computes (same
parameters restacked), forward and gradients; every remat policy gives the same loss and gradients; the
scanned program's size does not grow with depth."""
import dataclasses

import jax
import numpy as np
import pytest
from flax import nnx

from lmjax.losses import next_token
from lmjax.model import ModelConfig, Transformer
from lmjax.model.transformer import REMAT_POLICIES
from lmjax.model.stacking import stack_layers, unstack_layers

# A large init_std, so every gradient is far from zero and a relative comparison means something.
CFG = ModelConfig(vocab_size=97, num_layers=3, embed_dim=32, num_heads=4, num_kv_heads=2, mlp_dim=64,
                  init_std=0.2)


def _assert_trees_close(a, b, rtol=1e-4):
  """Every leaf of `a` within rtol·max|leaf of b| of `b`'s (and no leaf of b all zeros)."""
  def close(x, y):
    x, y = np.asarray(x), np.asarray(y)
    assert np.abs(y).max() > 1e-3
    np.testing.assert_allclose(x, y, atol=rtol * np.abs(y).max(), rtol=0)
  jax.tree.map(close, a, b)


def _batch(batch=2, length=12, seed=0):
  rng = np.random.default_rng(seed)
  ids = rng.integers(0, CFG.vocab_size, (batch, length + 1)).astype(np.int32)
  segments = np.array([[1] * 5 + [2] * (length - 5)] * batch, np.int32)  # two packed documents a row
  positions = np.array([list(range(5)) + list(range(length - 5))] * batch, np.int32)
  return {"tokens": ids[:, :-1], "targets": ids[:, 1:], "positions": positions, "segment_ids": segments,
          "loss_mask": np.ones((batch, length), np.float32)}


def _split(cfg: ModelConfig, seed=0):
  return nnx.split(Transformer(cfg, rngs=nnx.Rngs(seed)))


def _as_layout(cfg: ModelConfig, pure: dict):
  """(graphdef, params) of `cfg`'s layout holding the given pure parameters."""
  graphdef, abstract = nnx.split(nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0))))
  nnx.replace_by_pure_dict(abstract, jax.tree.map(np.asarray, pure))
  return graphdef, abstract


def _loss_and_grads(graphdef, params, batch):
  def loss(p):
    loss_sum, weight, _ = next_token(nnx.merge(graphdef, p), batch, None)
    return loss_sum / weight
  return jax.jit(jax.value_and_grad(loss))(params)


def test_scanned_parameters_stack_layers_on_a_leading_layers_axis():
  _, params = _split(dataclasses.replace(CFG, scan_layers=True))
  q = params["blocks"]["attn"]["q"]
  assert q[...].shape == (3, 32, 4, 8)
  assert q.get_metadata()["logical_axes"] == ("layers", "embed", "heads", "head_dim")
  layers = [q[...][i] for i in range(3)]
  assert not np.allclose(layers[0], layers[1])  # each layer has its own initialisation


def test_scanned_forward_and_gradients_equal_the_per_layer_model():
  batch = _batch()
  loop_def, loop_params = _split(CFG)
  scan_cfg = dataclasses.replace(CFG, scan_layers=True)
  scan_def, scan_params = _as_layout(scan_cfg, stack_layers(nnx.to_pure_dict(loop_params)))
  args = (batch["tokens"], batch["positions"], batch["segment_ids"])
  np.testing.assert_allclose(nnx.merge(scan_def, scan_params)(*args), nnx.merge(loop_def, loop_params)(*args),
                             atol=1e-5, rtol=1e-5)
  loop_loss, loop_grads = _loss_and_grads(loop_def, loop_params, batch)
  scan_loss, scan_grads = _loss_and_grads(scan_def, scan_params, batch)
  np.testing.assert_allclose(scan_loss, loop_loss, rtol=1e-6)
  unstacked = unstack_layers(nnx.to_pure_dict(scan_grads), CFG.num_layers)
  _assert_trees_close(unstacked, nnx.to_pure_dict(loop_grads))


def test_stack_then_unstack_is_the_identity():
  pure = nnx.to_pure_dict(_split(CFG)[1])
  back = unstack_layers(stack_layers(pure), CFG.num_layers)
  jax.tree.map(np.testing.assert_array_equal, back, pure)


@pytest.mark.parametrize("scan", [False, True], ids=["loop", "scan"])
def test_every_remat_policy_gives_the_same_loss_and_gradients(scan):
  batch = _batch()
  results = {}
  for remat in REMAT_POLICIES:
    graphdef, params = _split(dataclasses.replace(CFG, scan_layers=scan, remat=remat))
    results[remat] = _loss_and_grads(graphdef, params, batch)
  base_loss, base_grads = results["none"]
  for remat in set(REMAT_POLICIES) - {"none"}:
    loss, grads = results[remat]
    np.testing.assert_allclose(loss, base_loss, rtol=1e-6)
    _assert_trees_close(grads, base_grads)


def test_remat_full_recomputes_the_forward_in_the_backward_pass():
  """The policies really differ: 'full' runs more matmuls per step than 'none' (the recomputed forward)."""
  batch = _batch()
  def dot_count(remat):
    graphdef, params = _split(dataclasses.replace(CFG, remat=remat))
    step = jax.jit(jax.grad(lambda p: next_token(nnx.merge(graphdef, p), batch, None)[0]))
    return step.lower(params).as_text().count("dot_general")
  assert dot_count("full") > dot_count("none")


def test_an_unknown_remat_policy_names_the_field():
  with pytest.raises(ValueError, match="config.model.remat='some'"):
    dataclasses.replace(CFG, remat="some")


def _hlo_size(num_layers: int, scan: bool) -> int:
  cfg = dataclasses.replace(CFG, num_layers=num_layers, scan_layers=scan, remat="full")
  graphdef, params = nnx.split(nnx.eval_shape(lambda: Transformer(cfg, rngs=nnx.Rngs(0))))
  batch = _batch()
  step = jax.jit(jax.grad(lambda p: next_token(nnx.merge(graphdef, p), batch, None)[0]))
  return len(step.lower(params).as_text())


def test_scanned_program_size_does_not_grow_with_depth():
  assert _hlo_size(8, scan=True) < 1.5 * _hlo_size(2, scan=True)
  assert _hlo_size(8, scan=False) > 2.5 * _hlo_size(2, scan=False)  # the per-layer program does grow
