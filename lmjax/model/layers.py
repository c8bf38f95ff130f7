"""The Llama building blocks: RMSNorm, rotary embeddings, grouped-query attention, SwiGLU, and the options
the Llama-shaped checkpoints people start from add (Llama 3.1's RoPE remap, Qwen2's q/k/v biases, Qwen3's
per-head q/k norms, a head size other than d / n); each is off by default and adds no parameter when off.

Shape letters: b batch, t query positions, s key positions, d embed, n query heads, k key/value heads,
g query heads per KV head (n = k·g), h head size, f MLP hidden, v vocabulary, r the b·t rows of a matmul.

Every parameter carries `logical_axes` metadata (one name per dim) and every main activation passes
through `shard(x, names)`; `lmjax.sharding` maps those names to mesh axes. Parameters are stored in
`param_dtype` and cast to the compute `dtype` where they are used (mixed precision).
"""
import dataclasses
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lmjax import backend
from lmjax.config import ConfigError
from lmjax.model import splash
from lmjax.sharding import Shard


def dense(x: jax.Array, kernel: jax.Array, in_dims: int = 1) -> jax.Array:
  """x [b, t, *in] @ kernel [*in, *out] → [b, t, *out], as one 2-D matmul over the b·t rows.

  XLA's CPU backend runs the 2-D form (and its gradient) markedly faster than the batched einsum.
  """
  lead, inner = x.shape[: x.ndim - in_dims], kernel.shape[:in_dims]
  out = kernel.shape[in_dims:]
  y = x.reshape(-1, math.prod(inner)) @ kernel.reshape(math.prod(inner), -1)
  return y.reshape(*lead, *out)


def dense_wide(x_btd: jax.Array, kernel_dv: jax.Array) -> jax.Array:
  """`dense` for a wide output (the unembedding) with float32 results whatever the operands' dtype (logits
  rounded to bfloat16 lose the differences the loss reads).

  On CPU its weight gradient multiplies a materialised xᵀ: XLA's CPU matmul ran the transposed-operand form,
  [b·t, d]ᵀ @ [b·t, v], at half speed (~0.1 s of a 1.2 s train step at d=256, v=8192). Elsewhere the copy
  would only cost memory traffic and block fusion, so the plain matmul runs.
  """
  lead = x_btd.shape[:-1]
  matmul = _matmul_copying_transpose if backend.cpu_tuning() else _matmul_float32
  return matmul(x_btd.reshape(-1, x_btd.shape[-1]), kernel_dv).reshape(*lead, -1)


def _matmul_float32(a, b):
  return jnp.matmul(a, b, preferred_element_type=jnp.float32)


@jax.custom_vjp
def _matmul_copying_transpose(x_rd, w_dv):
  return _matmul_float32(x_rd, w_dv)


def _matmul_fwd(x_rd, w_dv):
  return _matmul_float32(x_rd, w_dv), (x_rd, w_dv)


def _matmul_bwd(residuals, grad_rv):
  x_rd, w_dv = residuals
  x_dr = jax.lax.optimization_barrier(x_rd.T)  # the barrier keeps XLA from folding the transpose into the dot
  grad_rv = grad_rv.astype(x_rd.dtype)
  return _matmul_float32(grad_rv, w_dv.T).astype(x_rd.dtype), _matmul_float32(x_dr, grad_rv).astype(w_dv.dtype)


_matmul_copying_transpose.defvjp(_matmul_fwd, _matmul_bwd)


def param(rngs: nnx.Rngs, shape: tuple[int, ...], axes: tuple[str, ...], std: float, dtype) -> nnx.Param:
  """A normal(0, std) parameter labelled with its logical axes."""
  return nnx.Param(std * jax.random.normal(rngs.params(), shape, dtype), logical_axes=axes)


class RMSNorm(nnx.Module):
  """x / rms(x) · scale, computed in float32 whatever the compute dtype."""

  def __init__(self, dim: int, *, eps: float, param_dtype):
    self.scale = nnx.Param(jnp.ones((dim,), param_dtype), logical_axes=("norm",))
    self.eps = eps

  def __call__(self, x_btd: jax.Array) -> jax.Array:
    x = x_btd.astype(jnp.float32)
    x = x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + self.eps)
    return (x * self.scale[...].astype(jnp.float32)).astype(x_btd.dtype)


ROPE_SCALING_TYPES = ("none", "llama3")


@dataclasses.dataclass(frozen=True)
class RopeScaling:
  """A remap of RoPE's frequencies (config.model.rope_scaling): "none", or "llama3", Llama 3.1's: wavelengths
  longer than original_max_position_embeddings / low_freq_factor are stretched by `factor`, those shorter
  than original_max_position_embeddings / high_freq_factor kept, and those between blended smoothly."""
  type: str = "none"
  factor: float = 8.0
  low_freq_factor: float = 1.0
  high_freq_factor: float = 4.0
  original_max_position_embeddings: int = 8192

  def __post_init__(self):
    if self.type not in ROPE_SCALING_TYPES:
      raise ConfigError(f"config.model.rope_scaling.type={self.type!r}; use one of "
                        f"{', '.join(ROPE_SCALING_TYPES)}")


def rope_frequencies(head_dim: int, theta: float, scaling: RopeScaling = RopeScaling()) -> np.ndarray:
  """RoPE's angular frequencies per pair, [head_dim/2] float32: theta^(-i/(h/2)), remapped by `scaling`."""
  half = head_dim // 2
  freqs_h = np.float32(theta) ** (-np.arange(half, dtype=np.float32) / np.float32(half))
  if scaling.type == "none":
    return freqs_h
  context, factor = scaling.original_max_position_embeddings, scaling.factor
  low, high = scaling.low_freq_factor, scaling.high_freq_factor
  wavelen_h = 2 * np.pi / freqs_h.astype(np.float64)
  stretched_h = np.where(wavelen_h > context / low, freqs_h / factor, freqs_h)
  smooth_h = (context / wavelen_h - low) / (high - low)
  blended_h = (1 - smooth_h) * stretched_h / factor + smooth_h * stretched_h
  medium_h = (wavelen_h >= context / high) & (wavelen_h <= context / low)
  return np.where(medium_h, blended_h, stretched_h).astype(np.float32)


@functools.lru_cache(maxsize=16)
def rope_tables(num_positions: int, head_dim: int, theta: float,
                scaling: RopeScaling = RopeScaling()) -> tuple[np.ndarray, np.ndarray]:
  """sin and cos of RoPE's angles, [num_positions, head_dim/2] float32, computed once on the host.

  Looked up from a constant, they cost XLA:CPU less than sin/cos fused into every use of q and k
  (~3% of a train step at d=256, seq 256).
  """
  angles_ph = np.arange(num_positions, dtype=np.float32)[:, None] * rope_frequencies(head_dim, theta, scaling)
  tables = np.sin(angles_ph), np.cos(angles_ph)
  for table in tables:
    table.flags.writeable = False
  return tables


def rope(x_btnh: jax.Array, positions_bt: jax.Array, theta: float, num_positions: int,
         scaling: RopeScaling = RopeScaling()) -> jax.Array:
  """Rotary position embedding, rotate-half convention (as in Llama/HF): pairs are (i, i + h/2).

  Positions must lie in [0, num_positions): a row's positions never exceed its length (or the cache's).
  """
  sin_ph, cos_ph = rope_tables(num_positions, x_btnh.shape[-1], float(theta), scaling)
  sin, cos = jnp.asarray(sin_ph)[positions_bt][:, :, None, :], jnp.asarray(cos_ph)[positions_bt][:, :, None, :]
  x1, x2 = jnp.split(x_btnh.astype(jnp.float32), 2, axis=-1)
  return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x_btnh.dtype)


def attention_mask(segment_ids_bt: jax.Array) -> jax.Array:
  """[b, t, s] True where query t may attend key s: causal and within the same packed document."""
  t = segment_ids_bt.shape[1]
  causal_ts = jnp.arange(t)[:, None] >= jnp.arange(t)[None, :]
  same_doc_bts = segment_ids_bt[:, :, None] == segment_ids_bt[:, None, :]
  return causal_ts[None] & same_doc_bts


def attend(q_btnh: jax.Array, k_bskh: jax.Array, v_bskh: jax.Array, mask_bts: jax.Array) -> jax.Array:
  """softmax(q·kᵀ/√h) v over the keys `mask_bts` allows → [b, t, n, h]; a KV head serves g query heads.

  Heads go before positions ([b, k, g, t, h]) so each head's scores are one plain matmul: on XLA's CPU
  backend this runs forward and backward ~2× faster than jax.nn.dot_product_attention's layout.
  """
  b, t, n, h = q_btnh.shape
  kv_heads = k_bskh.shape[2]
  q_bkgth = q_btnh.reshape(b, t, kv_heads, n // kv_heads, h).transpose(0, 2, 3, 1, 4)
  k_bksh, v_bksh = k_bskh.transpose(0, 2, 1, 3), v_bskh.transpose(0, 2, 1, 3)
  scores_bkgts = jnp.einsum("bkgth,bksh->bkgts", q_bkgth, k_bksh, preferred_element_type=jnp.float32)
  scores_bkgts = scores_bkgts * h**-0.5
  scores_bkgts = jnp.where(mask_bts[:, None, None], scores_bkgts, jnp.finfo(jnp.float32).min)
  probs_bkgts = jax.nn.softmax(scores_bkgts, axis=-1).astype(v_bskh.dtype)
  out_bkgth = jnp.einsum("bkgts,bksh->bkgth", probs_bkgts, v_bksh)
  return out_bkgth.transpose(0, 3, 1, 2, 4).reshape(b, t, n, h)


def causal_attend(q_btnh, k_btkh, v_btkh, mask_btt: jax.Array, block: int) -> jax.Array:
  """`attend` for `block` queries at a time against only the keys up to the block's end, [b, t, n, h].

  The mask must be causal: the skipped keys are masked anyway, so only the cost changes (with 4 blocks the
  score matmuls shrink to 10/16 of t·t). The blocks are static slices, so XLA sees smaller matmuls.
  """
  def block_out(a: int, e: int):
    return attend(q_btnh[:, a:e], k_btkh[:, :e], v_btkh[:, :e], mask_btt[:, a:e, :e])
  t = q_btnh.shape[1]
  return jnp.concatenate([block_out(a, min(a + block, t)) for a in range(0, t, block)], axis=1)


def fused_attend(q_btnh, k_bskh, v_bskh, mask_bts: jax.Array, implementation: str) -> jax.Array:
  """`attend` through jax.nn.dot_product_attention: XLA's fused attention, or cuDNN's flash attention on GPU
  (the packed-document mask goes in as its mask; GQA as fewer key/value heads)."""
  return jax.nn.dot_product_attention(q_btnh, k_bskh, v_bskh, mask=mask_bts[:, None],
                                      implementation=implementation)


def self_attend(q_btnh, k_btkh, v_btkh, segment_ids_bt: jax.Array, attention: str,
                shard: Shard = Shard()) -> jax.Array:
  """Causal self-attention within each row's packed documents (equal `segment_ids_bt` [b, t]) by
  model.attention's implementation for this backend (see lmjax/backend.py) → [b, t, n, h].

  Splash attention takes the segment ids as they are (and `shard`, the model's `Shard`, to run per device);
  the others take the [b, t, t] mask `attention_mask` builds from them.
  """
  implementation = backend.attention_implementation(attention)
  if implementation == "splash":
    return splash.splash_attend(q_btnh, k_btkh, v_btkh, segment_ids_bt, shard,
                                interpret=backend.pallas_interpret())
  mask_btt = attention_mask(segment_ids_bt)
  if implementation == "blocked":
    return causal_attend(q_btnh, k_btkh, v_btkh, mask_btt, query_block_size(q_btnh.shape[1]))
  return fused_attend(q_btnh, k_btkh, v_btkh, mask_btt, implementation)


def query_block_size(t: int) -> int:
  """Queries per `causal_attend` block: at least 64 (smaller blocks gained nothing at t=256 on CPU), and
  at most 8 blocks, so the unrolled program stays small at long t (at t=1024, 128 beat 64 and 256)."""
  return max(64, -(-t // 8))


class Attention(nnx.Module):
  """Grouped-query self-attention with RoPE; k key/value heads each serve g = n/k query heads.

  `cfg.qkv_bias` adds learned biases to q, k and v (Qwen2); `cfg.qk_norm` RMS-normalises each query and key
  head before RoPE (Qwen3).
  """

  def __init__(self, cfg, shard, *, rngs: nnx.Rngs):
    d, n, k, h = cfg.embed_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    pd, std = cfg.param_dtype, cfg.init_std
    self.q = param(rngs, (d, n, h), ("embed", "heads", "head_dim"), std, pd)
    self.k = param(rngs, (d, k, h), ("embed", "kv_heads", "head_dim"), std, pd)
    self.v = param(rngs, (d, k, h), ("embed", "kv_heads", "head_dim"), std, pd)
    self.o = param(rngs, (n, h, d), ("heads", "head_dim", "embed"), std, pd)
    if cfg.qkv_bias:
      self.q_bias = nnx.Param(jnp.zeros((n, h), pd), logical_axes=("heads", "head_dim"))
      self.k_bias = nnx.Param(jnp.zeros((k, h), pd), logical_axes=("kv_heads", "head_dim"))
      self.v_bias = nnx.Param(jnp.zeros((k, h), pd), logical_axes=("kv_heads", "head_dim"))
    if cfg.qk_norm:
      self.q_norm = RMSNorm(h, eps=cfg.norm_eps, param_dtype=pd)
      self.k_norm = RMSNorm(h, eps=cfg.norm_eps, param_dtype=pd)
    self.theta, self.rope_scaling = cfg.rope_theta, cfg.rope_scaling
    self.dtype, self.attention, self.shard = cfg.dtype, cfg.attention, shard

  def _project(self, x_btd, name: str):
    """x [b, t, d] → heads [b, t, n or k, h] through projection `name` (q, k or v), with its bias and norm."""
    y_btnh = dense(x_btd, getattr(self, name)[...].astype(self.dtype))
    if hasattr(self, f"{name}_bias"):
      y_btnh = y_btnh + getattr(self, f"{name}_bias")[...].astype(self.dtype)
    if hasattr(self, f"{name}_norm"):
      y_btnh = getattr(self, f"{name}_norm")(y_btnh)
    return y_btnh

  def __call__(self, x_btd, positions_bt, segment_ids_bt, cache: "KVCache | None" = None):
    """Attention output [b, t, d]; with a KV cache (`KVCache`), also the cache with this call's keys and values.

    Without a cache, attention is causal within each row's packed documents (`segment_ids_bt` [b, t]). With a
    cache, the new keys/values are written at slots positions_bt[:, 0] onwards of each row, a token at
    position p sees slots 0..p, and `segment_ids_bt` is unused (None).
    """
    num_positions = x_btd.shape[1] if cache is None else cache.keys.shape[-3]
    rotate = lambda y: rope(y, positions_bt, self.theta, num_positions, self.rope_scaling)
    q_btnh, k_bskh = rotate(self._project(x_btd, "q")), rotate(self._project(x_btd, "k"))
    v_bskh = self._project(x_btd, "v")
    q_btnh = self.shard(q_btnh, ("batch", "length", "act_heads", "head_dim"))
    if cache is None:
      out_btnh = self_attend(q_btnh, k_bskh, v_bskh, segment_ids_bt, self.attention, self.shard)
    else:
      cache = cache.write(k_bskh, v_bskh, positions_bt[:, 0])
      out_btnh = attend(q_btnh, *cache.read(), cache_mask(positions_bt, num_positions))
    out_btd = dense(out_btnh, self.o[...].astype(self.dtype), in_dims=2)
    return out_btd if cache is None else (out_btd, cache)


def cache_mask(positions_bt: jax.Array, num_slots: int) -> jax.Array:
  """[b, t, S] True where the token at position p may attend cache slot s: s ≤ p."""
  return jnp.arange(num_slots)[None, None, :] <= positions_bt[:, :, None]


class KVCache(NamedTuple):
  """One layer's view of the KV cache: its own keys and values [b, S, k, h], or (scanned layers) every
  layer's, stacked to [L, b, S, k, h], with this layer's index. The stacked form is written in place at
  the layer index: a scan that returned each layer's updated cache as its output would copy the whole
  stacked cache on every decoded token."""
  keys: jax.Array
  values: jax.Array
  layer: jax.Array | None = None

  def write(self, new_keys_btkh: jax.Array, new_values_btkh: jax.Array, start_b: jax.Array) -> "KVCache":
    """The cache with each row's new entries at slots start[b] .. start[b] + t - 1."""
    write = functools.partial(write_cache, start_b=start_b, layer=self.layer)
    return self._replace(keys=write(self.keys, new_keys_btkh), values=write(self.values, new_values_btkh))

  def read(self) -> tuple[jax.Array, jax.Array]:
    """This layer's keys and values [b, S, k, h]."""
    if self.layer is None:
      return self.keys, self.values
    return self.keys[self.layer], self.values[self.layer]


def write_cache(cache: jax.Array, new_btkh: jax.Array, start_b: jax.Array, layer=None) -> jax.Array:
  """Writes each row's new entries into a [b, S, k, h] cache, or into layer `layer` of a stacked
  [L, b, S, k, h] one, at slots start[b] .. start[b] + t - 1.

  The stacked write is one scatter (slots past the cache dropped), in place in a loop's carry; a vmapped
  dynamic_update_slice there made XLA:CPU transpose the whole stacked cache on every token.
  """
  new_btkh = new_btkh.astype(cache.dtype)
  if layer is None:
    return jax.vmap(lambda c, n, s: jax.lax.dynamic_update_slice(c, n, (s, 0, 0)))(cache, new_btkh, start_b)
  b, t = new_btkh.shape[:2]
  rows_bt = jnp.broadcast_to(jnp.arange(b)[:, None], (b, t))
  slots_bt = start_b[:, None] + jnp.arange(t)[None, :]
  return cache.at[layer, rows_bt, slots_bt].set(new_btkh, mode="drop")


class SwiGLU(nnx.Module):
  """down(silu(x·gate) ⊙ x·up), the Llama MLP."""

  def __init__(self, cfg, shard, *, rngs: nnx.Rngs):
    d, f, pd, std = cfg.embed_dim, cfg.mlp_dim, cfg.param_dtype, cfg.init_std
    self.gate = param(rngs, (d, f), ("embed", "mlp"), std, pd)
    self.up = param(rngs, (d, f), ("embed", "mlp"), std, pd)
    self.down = param(rngs, (f, d), ("mlp", "embed"), std, pd)
    self.dtype, self.shard = cfg.dtype, shard

  def __call__(self, x_btd):
    cast = lambda p: p[...].astype(self.dtype)
    hidden_btf = jax.nn.silu(dense(x_btd, cast(self.gate))) * dense(x_btd, cast(self.up))
    hidden_btf = self.shard(hidden_btf, ("batch", "length", "act_mlp"))
    return dense(hidden_btf, cast(self.down))
