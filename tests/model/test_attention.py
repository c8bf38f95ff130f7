"""Attention: the head-major `attend`, the query-blocked `causal_attend` and TPU splash attention (its Pallas
kernel interpreted on CPU, alone and under shard_map on a mesh) equal jax.nn.dot_product_attention (outputs
and gradients) within packed documents, for GQA, MQA and MHA, blocks that do not divide t and lengths the
kernel's blocks do not divide; and `dense_wide`'s hand-written gradient equals a plain matmul's."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding

from configs import base
from lmjax.losses import next_token
from lmjax.model import ModelConfig, Transformer, splash
from lmjax.model.layers import (attend, attention_mask, cache_mask, causal_attend, dense_wide, query_block_size,
                                self_attend)
from lmjax.sharding import Shard, make_mesh, rules_from_config


def _qkv_segments(t, n, k, h=8, b=3, seed=0):
  rng = np.random.default_rng(seed)
  q, keys, v = (jnp.asarray(rng.normal(size=(b, t, heads, h)), jnp.float32) for heads in (n, k, k))
  segments = jnp.asarray(np.sort(rng.integers(0, 4, (b, t)), axis=1), jnp.int32)  # ~4 packed documents a row
  return q, keys, v, segments


def _output_and_grads(attention, q, k, v, segments):
  """The output and the gradients of <output, a fixed random cotangent> with respect to q, k and v."""
  cotangent = jax.random.normal(jax.random.key(1), q.shape)
  loss = lambda q, k, v: jnp.sum(attention(q, k, v, segments) * cotangent)
  return jax.jit(lambda *a: (attention(*a, segments), jax.grad(loss, argnums=(0, 1, 2))(*a)))(q, k, v)


def _reference(q, k, v, segments):
  return jax.nn.dot_product_attention(q, k, v, mask=attention_mask(segments)[:, None], implementation="xla")


def _assert_equals_the_reference(attention, q, k, v, segments, atol=2e-6):
  """Outputs and q/k/v gradients of `attention(q, k, v, segments)` equal jax.nn.dot_product_attention's
  under the causal packed-document mask."""
  out, grads = _output_and_grads(attention, q, k, v, segments)
  want_out, want_grads = _output_and_grads(_reference, q, k, v, segments)
  np.testing.assert_allclose(out, want_out, atol=atol, rtol=1e-5)
  for got, want in zip(grads, want_grads):
    np.testing.assert_allclose(got, want, atol=atol, rtol=1e-5)


def _masked(attention):
  """An attention taking a [b, t, s] mask as one taking segment ids [b, t]."""
  return lambda q, k, v, segments: attention(q, k, v, attention_mask(segments))


@pytest.mark.parametrize("n,k", [(4, 2), (4, 4), (6, 1)], ids=["gqa", "mha", "mqa"])
@pytest.mark.parametrize("block", [5, 16, 64])
def test_causal_blocked_attention_equals_the_reference_with_packed_documents(n, k, block):
  blocked = _masked(lambda *a: causal_attend(*a, block))
  _assert_equals_the_reference(blocked, *_qkv_segments(t=37, n=n, k=k))


def test_attend_over_a_cache_equals_the_reference():
  """The decoding case: t new queries against S > t cache slots, each seeing the slots up to its position."""
  q, _, _, _ = _qkv_segments(t=5, n=4, k=2)
  _, keys, v, _ = _qkv_segments(t=16, n=4, k=2, seed=1)
  positions = jnp.array([[3, 4, 5, 6, 7], [0, 1, 2, 3, 4], [10, 11, 12, 13, 14]])
  mask = cache_mask(positions, 16)
  assert mask[0, 0].tolist() == [True] * 4 + [False] * 12  # position 3 sees slots 0..3
  want = jax.nn.dot_product_attention(q, keys, v, mask=mask[:, None])
  np.testing.assert_allclose(attend(q, keys, v, mask), want, atol=2e-6, rtol=1e-5)


def test_causal_attend_drops_keys_after_each_block_so_needs_a_causal_mask():
  """Pins the precondition: if the mask lets a query see a later key, blocked and full attention differ."""
  q, keys, v, _ = _qkv_segments(t=12, n=4, k=2)
  everything = jnp.ones((3, 12, 12), bool)
  full = attend(q, keys, v, everything)
  np.testing.assert_allclose(causal_attend(q, keys, v, everything, 12), full, atol=2e-6)
  assert not np.allclose(causal_attend(q, keys, v, everything, 4), full, atol=1e-3)


@pytest.mark.parametrize("t,block", [(12, 64), (256, 64), (1024, 128), (4096, 512)])
def test_query_blocks_are_at_least_64_and_at_most_8(t, block):
  assert query_block_size(t) == block


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_dense_wide_has_the_value_and_gradients_of_a_plain_matmul(dtype):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, 5, 16)), dtype)
  kernel = jnp.asarray(rng.normal(size=(16, 40)), dtype)
  cotangent = jnp.asarray(rng.normal(size=(2, 5, 40)), jnp.float32)
  loss = lambda matmul: lambda x, w: jnp.sum(matmul(x, w).astype(jnp.float32) * cotangent)
  got = jax.jit(jax.value_and_grad(loss(dense_wide), argnums=(0, 1)))(x, kernel)
  want = jax.jit(jax.value_and_grad(loss(lambda x, w: x @ w), argnums=(0, 1)))(x, kernel)
  tol = 1e-5 if dtype == "float32" else 2e-2
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=tol, atol=tol)


@pytest.mark.parametrize("implementation", ["blocked", "xla", "splash"])
def test_every_implementation_that_runs_on_cpu_equals_the_reference(implementation):
  _assert_equals_the_reference(lambda *a: self_attend(*a, implementation), *_qkv_segments(t=70, n=4, k=2))


@pytest.mark.parametrize("t,n,k", [(300, 4, 2), (128, 6, 1), (256, 4, 4)], ids=["gqa", "mqa", "mha"])
def test_splash_attention_equals_the_reference_over_several_blocks_and_padding(t, n, k):
  """t=300 pads to 384 = 3 blocks of 128 (block-sparse causal tiles); 128 and 256 are one block, unpadded."""
  assert splash.block_size(t) == {300: 128, 128: 128, 256: 256}[t]
  _assert_equals_the_reference(lambda *a: self_attend(*a, "splash"), *_qkv_segments(t=t, n=n, k=k, b=2),
                               atol=5e-6)


def _shard(mesh_shape) -> Shard:
  return Shard(make_mesh(mesh_shape), rules_from_config(base.get_config().rules))


@pytest.mark.parametrize("mesh_shape", [(1, 2, 2), (2, 1, 4)], ids=["rows-and-kv-heads", "kv-heads-repeated"])
def test_splash_attention_under_shard_map_equals_the_reference(mesh_shape):
  """Rows split over data·fsdp and heads over tensor; with tensor=4 the 2 key/value heads do not split, so
  each is repeated for its query heads."""
  shard = _shard(mesh_shape)
  _assert_equals_the_reference(lambda *a: self_attend(*a, "splash", shard), *_qkv_segments(t=70, n=4, k=2, b=4))


def test_splash_attention_runs_on_each_devices_rows_and_heads_without_gathering():
  """Inputs laid out as the model shards them: the sharded call moves no data between devices."""
  shard = _shard((1, 2, 2))
  q, k, v, segments = _qkv_segments(t=70, n=4, k=2, b=4)
  place = lambda x, names: jax.device_put(x, NamedSharding(shard.mesh, shard.spec(names, x.shape)))
  heads = ("batch", None, "act_heads", None)
  args = (place(q, heads), place(k, heads), place(v, heads), place(segments, ("batch", None)))
  hlo = jax.jit(lambda *a: self_attend(*a, "splash", shard)).lower(*args).compile().as_text()
  assert not any(op in hlo for op in ("all-gather", "all-to-all", "all-reduce", "collective-permute"))


def test_a_scanned_rematerialised_model_on_a_mesh_has_the_same_loss_and_gradients_with_splash():
  """The model path: splash under shard_map inside lax.scan and jax.checkpoint, rows and heads split."""
  shard = _shard((1, 2, 2))
  cfg = ModelConfig(vocab_size=97, num_layers=2, embed_dim=32, num_heads=4, num_kv_heads=2, mlp_dim=64,
                    init_std=0.2, scan_layers=True, remat="full")
  rng = np.random.default_rng(0)
  ids = rng.integers(0, 97, (4, 41)).astype(np.int32)
  segments = np.sort(rng.integers(0, 3, (4, 40)), axis=1).astype(np.int32)
  positions = np.asarray([np.arange(40) - np.searchsorted(row, row) for row in segments], np.int32)
  batch = {"tokens": ids[:, :-1], "targets": ids[:, 1:], "positions": positions, "segment_ids": segments,
           "loss_mask": np.ones((4, 40), np.float32)}

  def loss_and_grads(attention):
    graphdef, params = nnx.split(Transformer(dataclasses.replace(cfg, attention=attention), shard,
                                             rngs=nnx.Rngs(0)))
    def loss(p):
      loss_sum, weight, _ = next_token(nnx.merge(graphdef, p), batch, None)
      return loss_sum / weight
    return jax.jit(jax.value_and_grad(loss))(params)

  (got_loss, got_grads), (want_loss, want_grads) = loss_and_grads("splash"), loss_and_grads("xla")
  np.testing.assert_allclose(got_loss, want_loss, rtol=1e-6)
  for got, want in zip(jax.tree.leaves(got_grads), jax.tree.leaves(want_grads)):
    np.testing.assert_allclose(got, want, atol=1e-5 * np.abs(want).max(), rtol=0)
