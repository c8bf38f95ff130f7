"""Attention: the head-major `attend` and the query-blocked `causal_attend` equal jax.nn.dot_product_attention
(outputs and gradients) under causal + packed-document masks, for GQA and MHA and blocks that do not divide t;
and `dense_wide`'s hand-written gradient equals a plain matmul's."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lmjax.model.layers import attend, attention_mask, causal_attend, dense_wide, query_block_size, self_attend


def _qkv_segments(t, n, k, h=8, b=3, seed=0):
  rng = np.random.default_rng(seed)
  q, keys, v = (jnp.asarray(rng.normal(size=(b, t, heads, h)), jnp.float32) for heads in (n, k, k))
  segments = jnp.asarray(np.sort(rng.integers(0, 4, (b, t)), axis=1), jnp.int32)  # ~4 packed documents a row
  return q, keys, v, segments


def _output_and_grads(attention, q, k, v, mask):
  """The output and the gradients of <output, a fixed random cotangent> with respect to q, k and v."""
  cotangent = jax.random.normal(jax.random.key(1), q.shape)
  loss = lambda q, k, v: jnp.sum(attention(q, k, v, mask) * cotangent)
  return jax.jit(lambda *a: (attention(*a, mask), jax.grad(loss, argnums=(0, 1, 2))(*a)))(q, k, v)


def _reference(q, k, v, mask):
  return jax.nn.dot_product_attention(q, k, v, mask=mask[:, None])


def _assert_equals_the_reference(attention, q, k, v, segments):
  """Outputs and q/k/v gradients of `attention` equal jax.nn.dot_product_attention's under the packed mask."""
  mask = attention_mask(segments)
  out, grads = _output_and_grads(attention, q, k, v, mask)
  want_out, want_grads = _output_and_grads(_reference, q, k, v, mask)
  np.testing.assert_allclose(out, want_out, atol=2e-6, rtol=1e-5)
  for got, want in zip(grads, want_grads):
    np.testing.assert_allclose(got, want, atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("n,k", [(4, 2), (4, 4), (6, 1)], ids=["gqa", "mha", "mqa"])
@pytest.mark.parametrize("block", [5, 16, 64])
def test_causal_blocked_attention_equals_the_reference_with_packed_documents(n, k, block):
  _assert_equals_the_reference(lambda *a: causal_attend(*a, block), *_qkv_segments(t=37, n=n, k=k))


def test_attend_over_a_cache_equals_the_reference():
  """The decoding case: t new queries against S > t cache slots, each seeing the slots up to its position."""
  q, _, _, _ = _qkv_segments(t=5, n=4, k=2)
  _, keys, v, _ = _qkv_segments(t=16, n=4, k=2, seed=1)
  positions = jnp.array([[3, 4, 5, 6, 7], [0, 1, 2, 3, 4], [10, 11, 12, 13, 14]])
  mask = jnp.arange(16)[None, None, :] <= positions[:, :, None]
  np.testing.assert_allclose(attend(q, keys, v, mask), _reference(q, keys, v, mask), atol=2e-6, rtol=1e-5)


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


@pytest.mark.parametrize("implementation", ["blocked", "xla"])
def test_every_implementation_that_runs_on_cpu_equals_the_reference(implementation):
  _assert_equals_the_reference(lambda *a: self_attend(*a, implementation), *_qkv_segments(t=70, n=4, k=2))
