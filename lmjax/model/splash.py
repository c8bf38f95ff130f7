"""TPU splash attention (Pallas): causal attention within packed documents, without [t, t] scores in memory.

Shape letters as in `layers.py`; T is t padded up to a multiple of the kernel's block. The kernel takes one
row of heads-first arrays (q [n, T, h], k and v [k, T, h], segment ids [T]), serves GQA itself (query head i
reads key/value head i // g) and does not scale q, so q is scaled by 1/√h here. It is vmapped over the batch
and, with a mesh, run under `jax.shard_map` with rows over the batch axes and heads over the heads axes
(`lmjax.sharding` names them), each device attending over its own rows and heads. `interpret=True` runs the
same kernel as plain JAX ops on any backend (slow: what the CPU tests compare).
"""
import functools

import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.tpu import splash_attention as sa

_BLOCK_CHOICES = (512, 256, 128)  # the kernel's query/key tiles; its key tile must be a multiple of 128 lanes
_Q_NAMES = ("batch", None, "act_heads", None)  # the whole sequence and head size on every device


def splash_attend(q_btnh, k_btkh, v_btkh, segment_ids_bt, shard, *, interpret: bool) -> jax.Array:
  """softmax(q·kᵀ/√h) v, causal and within each row's documents (equal segment ids) → [b, t, n, h].

  `shard` is the model's `Shard`: with a mesh, the kernel runs under shard_map on each device's rows and
  heads; if the heads axes split the query heads but not the fewer key/value heads, each key/value head is
  repeated for its g query heads so that every device holds the ones its query heads read.
  """
  if shard.mesh is None:
    return _attend_local(q_btnh, k_btkh, v_btkh, segment_ids_bt, interpret)
  q_spec = shard.spec(_Q_NAMES, q_btnh.shape)
  if shard.spec(_Q_NAMES, k_btkh.shape) != q_spec:
    g = q_btnh.shape[2] // k_btkh.shape[2]
    k_btkh, v_btkh = jnp.repeat(k_btkh, g, axis=2), jnp.repeat(v_btkh, g, axis=2)
  rows_spec = jax.sharding.PartitionSpec(q_spec[0], None)
  local = functools.partial(_attend_local, interpret=interpret)
  # check_vma=False: the kernel's pallas_call declares no varying mesh axes for its outputs.
  return jax.shard_map(local, mesh=shard.mesh, in_specs=(q_spec, q_spec, q_spec, rows_spec), out_specs=q_spec,
                       check_vma=False)(q_btnh, k_btkh, v_btkh, segment_ids_bt)


def _attend_local(q_btnh, k_btkh, v_btkh, segment_ids_bt, interpret: bool) -> jax.Array:
  """`splash_attend` on one device's arrays: padded to the block, heads first, the kernel vmapped over rows.

  Padding sits after every real position, so causality keeps real queries off it; padded queries see at
  least themselves (a valid softmax), and their outputs are dropped, so they add nothing to the gradients.
  """
  b, t, n, h = q_btnh.shape
  padded = block_size(t) * -(-t // block_size(t))
  pad = lambda x: jnp.pad(x, [(0, 0), (0, padded - t)] + [(0, 0)] * (x.ndim - 2))
  heads_first = lambda x_btnh: pad(x_btnh).transpose(0, 2, 1, 3)
  kernel = _kernel(n, padded, interpret)
  q_bnth = heads_first(q_btnh * jnp.asarray(h**-0.5, q_btnh.dtype))
  segments_bt = pad(segment_ids_bt)
  def row(q_nth, k_kth, v_kth, segments_t):
    return kernel(q_nth, k_kth, v_kth, sa.SegmentIds(q=segments_t, kv=segments_t))
  out_bnth = jax.vmap(row)(q_bnth, heads_first(k_btkh), heads_first(v_btkh), segments_bt)
  return out_bnth.transpose(0, 2, 1, 3)[:, :t]


def block_size(t: int) -> int:
  """The kernel's tile along queries and keys: the largest choice that divides t padded to 128."""
  padded = -(-t // 128) * 128
  return next(block for block in _BLOCK_CHOICES if padded % block == 0)


@functools.lru_cache(maxsize=16)
def _kernel(num_heads: int, t: int, interpret: bool):
  """The causal splash kernel for n heads of length t (its block-sparsity tables are built on the host)."""
  block = block_size(t)
  sizes = sa.BlockSizes(block_q=block, block_kv=block, block_kv_compute=block, block_q_dkv=block,
                        block_kv_dkv=block, block_kv_dkv_compute=block, block_q_dq=block, block_kv_dq=block)
  mask = sa.MultiHeadMask([sa.CausalMask((t, t))] * num_heads)
  with jax.ensure_compile_time_eval():  # the tables become constants, not values of the trace that asked
    return sa.make_splash_mha(mask, block_sizes=sizes, head_shards=1, q_seq_shards=1, interpret=interpret)
