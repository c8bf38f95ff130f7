"""The decoder-only Llama-style transformer and its analytic parameter count.

`Transformer(tokens, positions, segment_ids) -> logits`; shape letters as in `layers.py` (L: layers).

The blocks are either a list (`blocks/{i}/...`) or, with `scan_layers`, one Block whose parameters carry a
leading [L] axis (`blocks/...`, logical axis 'layers') run by `lax.scan`: one layer is traced and compiled
whatever the depth. `remat` picks what the backward pass keeps of each block's forward (REMAT_POLICIES).
"""
import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from lmjax.model.layers import Attention, KVCache, RMSNorm, RopeScaling, SwiGLU, dense_wide, param
from lmjax.sharding import Shard


# What the backward pass may keep of a block's forward; the rest is recomputed. "none" keeps everything.
REMAT_POLICIES = {
    "none": None,
    "full": jax.checkpoint_policies.nothing_saveable,  # keep only each block's input
    "dots_saveable": jax.checkpoint_policies.dots_saveable,  # keep matmul outputs, recompute the rest
    # Keep the projections' outputs (2-D matmuls, see `dense`) but not attention's batched einsums, whose
    # [b, n, t, s] scores dominate memory at long sequence lengths.
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The model's hyperparameters (a frozen copy of `config.model`, with dtypes resolved)."""
  vocab_size: int
  num_layers: int
  embed_dim: int
  num_heads: int
  num_kv_heads: int
  mlp_dim: int
  rope_theta: float = 10_000.0
  norm_eps: float = 1e-5
  tie_embeddings: bool = False
  init_std: float = 0.02
  dtype: str = "float32"
  param_dtype: str = "float32"
  scan_layers: bool = False
  remat: str = "none"
  attention: str = "auto"
  head_dim: int = 0  # 0: embed_dim // num_heads (resolved in __post_init__)
  qkv_bias: bool = False
  qk_norm: bool = False
  rope_scaling: RopeScaling = RopeScaling()

  @classmethod
  def from_config(cls, model_config) -> "ModelConfig":
    """From config.model; a field it lacks (a run saved before the field existed) keeps its default."""
    values = {f.name: model_config[f.name] for f in dataclasses.fields(cls) if f.name in model_config}
    if "rope_scaling" in values:
      values["rope_scaling"] = RopeScaling(**dict(values["rope_scaling"]))
    return cls(**values)

  @property
  def unembed_std(self) -> float:
    """The output projection's init std: at most 0.5/√d, so logits on the final norm's unit-RMS states start
    with std ≤ 0.5 and step 0's loss within ~σ²/2 = 0.125 nats of ln(vocab) at any width. Tied, the
    embedding table is that projection and starts at this std too."""
    return min(self.init_std, 0.5 / self.embed_dim**0.5)

  def __post_init__(self):
    if self.remat not in REMAT_POLICIES:
      raise ValueError(f"config.model.remat={self.remat!r}; use one of {', '.join(REMAT_POLICIES)}")
    object.__setattr__(self, "dtype", jnp.dtype(self.dtype))
    object.__setattr__(self, "param_dtype", jnp.dtype(self.param_dtype))
    object.__setattr__(self, "head_dim", self.head_dim or self.embed_dim // self.num_heads)


class Block(nnx.Module):
  """Pre-norm residual block: x + attn(norm(x)), then + mlp(norm(x))."""

  def __init__(self, cfg: ModelConfig, shard: Shard, *, rngs: nnx.Rngs):
    self.attn_norm = RMSNorm(cfg.embed_dim, eps=cfg.norm_eps, param_dtype=cfg.param_dtype)
    self.attn = Attention(cfg, shard, rngs=rngs)
    self.mlp_norm = RMSNorm(cfg.embed_dim, eps=cfg.norm_eps, param_dtype=cfg.param_dtype)
    self.mlp = SwiGLU(cfg, shard, rngs=rngs)
    self.shard = shard

  def __call__(self, x_btd, positions_bt, segment_ids_bt, cache=None):
    attended = self.attn(self.attn_norm(x_btd), positions_bt, segment_ids_bt, cache)
    attn_btd, cache = attended if cache is not None else (attended, None)
    x_btd = x_btd + attn_btd
    x_btd = x_btd + self.mlp(self.mlp_norm(x_btd))
    return self.shard(x_btd, ("batch", "length", "act_embed")), cache


class Transformer(nnx.Module):
  """Token ids [b, t] → next-token logits [b, t, v] (float32)."""

  def __init__(self, cfg: ModelConfig, shard: Shard = Shard(), *, rngs: nnx.Rngs):
    embed_std = cfg.unembed_std if cfg.tie_embeddings else 1.0  # pre-norm blocks read any scale of input
    self.embed = param(rngs, (cfg.vocab_size, cfg.embed_dim), ("vocab", "embed"), embed_std, cfg.param_dtype)
    if cfg.scan_layers:
      self.blocks = stacked_blocks(cfg, shard, rngs)
    else:
      self.blocks = nnx.List([Block(cfg, shard, rngs=rngs) for _ in range(cfg.num_layers)])
    self.final_norm = RMSNorm(cfg.embed_dim, eps=cfg.norm_eps, param_dtype=cfg.param_dtype)
    if not cfg.tie_embeddings:
      self.unembed = param(rngs, (cfg.embed_dim, cfg.vocab_size), ("embed", "vocab"), cfg.unembed_std,
                           cfg.param_dtype)
    self.cfg, self.shard = cfg, shard

  def __call__(self, tokens_bt, positions_bt, segment_ids_bt):
    """Logits [b, t, v] for packed sequences: attention is causal and stays within each segment."""
    return self.unembed_logits(self.hidden_states(tokens_bt, positions_bt, segment_ids_bt))

  def hidden_states(self, tokens_bt, positions_bt, segment_ids_bt):
    """The final-norm residual stream [b, t, d], which the LM head and any scalar head read."""
    x_btd, _ = self._forward(tokens_bt, positions_bt, segment_ids_bt, None)
    return x_btd

  def decode(self, tokens_bt, positions_bt, cache, *, logits_at_b=None):
    """(logits [b, t, v], cache) for tokens at `positions` (consecutive per row), attending to the cache.

    The cache holds keys and values [b, S, k, h] of every layer (stacked with scan_layers; see `init_cache`);
    the new tokens' keys/values go to slots positions[b, 0] onwards, and a token at position p sees slots
    0..p. Prefill and one-token decode steps are the same call. `logits_at_b` [b] unembeds one position per
    row only (logits [b, 1, v]): a prefill samples from its last token, and the full [b, t, v] logits of a
    large batch would dwarf the rest of its memory.
    """
    x_btd, cache = self._forward(tokens_bt, positions_bt, None, cache)
    if logits_at_b is not None:
      x_btd = jnp.take_along_axis(x_btd, logits_at_b[:, None, None], axis=1)
    return self.unembed_logits(x_btd), cache

  def init_cache(self, batch_size: int, max_length: int):
    """An empty KV cache of zero keys and values [b, max_length, k, h] in the compute dtype: a list with one
    (keys, values) per layer, or with `scan_layers` one (keys, values) pair stacked to [L, b, S, k, h]."""
    c = self.cfg
    shape = (batch_size, max_length, c.num_kv_heads, c.head_dim)
    if c.scan_layers:
      return (jnp.zeros((c.num_layers, *shape), c.dtype), jnp.zeros((c.num_layers, *shape), c.dtype))
    return [(jnp.zeros(shape, c.dtype), jnp.zeros(shape, c.dtype)) for _ in range(c.num_layers)]

  def _forward(self, tokens_bt, positions_bt, segment_ids_bt, cache):
    # Gather the table's embed axis first (as FSDP does for every weight) so the lookup is local.
    table_vd = self.shard(self.embed[...].astype(self.cfg.dtype), ("vocab", None))
    x_btd = self.shard(table_vd[tokens_bt], ("batch", "length", "act_embed"))
    run_blocks = _scan_blocks if self.cfg.scan_layers else _loop_blocks
    x_btd, cache = run_blocks(self.blocks, self.cfg.remat, x_btd, positions_bt, segment_ids_bt, cache)
    return self.final_norm(x_btd), cache

  def unembed_logits(self, x_btd):
    """Float32 logits [b, t, v] from final hidden states."""
    unembed_dv = self.embed[...].T if self.cfg.tie_embeddings else self.unembed[...]
    logits_btv = dense_wide(x_btd, unembed_dv.astype(self.cfg.dtype))
    return self.shard(logits_btv, ("batch", "length", "act_vocab")).astype(jnp.float32)


def stacked_blocks(cfg: ModelConfig, shard: Shard, rngs: nnx.Rngs) -> Block:
  """One Block holding all L layers' parameters stacked on a leading 'layers' axis (layer i from key i)."""
  keys = jax.random.split(rngs.params(), cfg.num_layers)
  stacked = jax.vmap(lambda key: nnx.state(Block(cfg, shard, rngs=nnx.Rngs(params=key))))(keys)
  for variable in jax.tree.leaves(stacked, is_leaf=lambda x: isinstance(x, nnx.Variable)):
    variable.set_metadata(logical_axes=("layers", *variable.get_metadata()["logical_axes"]))
  graphdef = nnx.graphdef(nnx.eval_shape(lambda: Block(cfg, shard, rngs=nnx.Rngs(params=0))))
  return nnx.merge(graphdef, stacked)


def _layer_fn(graphdef: nnx.GraphDef, remat: str, *, in_scan: bool):
  """`(x, layer_params, positions, segment_ids, cache) -> (x, cache)` of one block, under the remat policy."""
  def apply(x_btd, layer_params, positions_bt, segment_ids_bt, cache):
    return nnx.merge(graphdef, layer_params)(x_btd, positions_bt, segment_ids_bt, cache)
  if remat == "none":
    return apply
  # Inside a scan the loop already stops XLA from merging the recomputation with the forward (JAX docs).
  return jax.checkpoint(apply, policy=REMAT_POLICIES[remat], prevent_cse=not in_scan)


def _loop_blocks(blocks, remat: str, x_btd, positions_bt, segment_ids_bt, cache):
  """Runs a list of blocks in turn; `cache` is None or a list of per-layer (keys, values)."""
  new_cache = []
  for i, block in enumerate(blocks):
    graphdef, layer_params = nnx.split(block)
    layer = _layer_fn(graphdef, remat, in_scan=False)
    layer_cache = None if cache is None else KVCache(*cache[i])
    x_btd, layer_cache = layer(x_btd, layer_params, positions_bt, segment_ids_bt, layer_cache)
    new_cache.append(None if cache is None else (layer_cache.keys, layer_cache.values))
  return x_btd, (None if cache is None else new_cache)


def _scan_blocks(blocks: Block, remat: str, x_btd, positions_bt, segment_ids_bt, cache):
  """Scans one stacked Block over its leading layer axis; `cache` is None or stacked (keys, values), which
  rides in the scan's carry and is written in place at each layer's index (see `KVCache`)."""
  graphdef, stacked = nnx.split(blocks)
  layer = _layer_fn(graphdef, remat, in_scan=True)
  if cache is None:
    body = lambda x_btd, layer_params: (layer(x_btd, layer_params, positions_bt, segment_ids_bt, None)[0], None)
    return jax.lax.scan(body, x_btd, stacked)[0], None

  def body(carry, params_and_index):
    x_btd, (keys, values) = carry
    layer_params, index = params_and_index
    x_btd, layer_cache = layer(x_btd, layer_params, positions_bt, segment_ids_bt, KVCache(keys, values, index))
    return (x_btd, (layer_cache.keys, layer_cache.values)), None

  layers = jnp.arange(jax.tree.leaves(cache)[0].shape[0])
  (x_btd, cache), _ = jax.lax.scan(body, (x_btd, tuple(cache)), (stacked, layers))
  return x_btd, cache


def param_count(cfg: ModelConfig) -> int:
  """The number of parameters, from the shapes alone (checked against the built model in tests)."""
  d, n, k, f, v, h = cfg.embed_dim, cfg.num_heads, cfg.num_kv_heads, cfg.mlp_dim, cfg.vocab_size, cfg.head_dim
  per_block = 2 * d + d * n * h + 2 * d * k * h + n * h * d + 3 * d * f
  per_block += (n * h + 2 * k * h if cfg.qkv_bias else 0) + (2 * h if cfg.qk_norm else 0)
  return v * d + (0 if cfg.tie_embeddings else d * v) + cfg.num_layers * per_block + d


def flops_per_token(cfg: ModelConfig, seq_len: int, *, logits: bool = True) -> float:
  """Training FLOPs per token, PaLM's convention: 6·(matmul parameters) + 12·layers·seq_len·embed_dim.

  The embedding lookup is not a matmul (unless tied, when it is also the output projection). `logits=False`
  leaves out the output projection, for a loss that reads only a scalar head (XLA then never computes it).
  """
  lookup = 0 if cfg.tie_embeddings else cfg.vocab_size * cfg.embed_dim
  unembed = 0 if logits else cfg.vocab_size * cfg.embed_dim
  return 6 * (param_count(cfg) - lookup - unembed) + 12 * cfg.num_layers * seq_len * cfg.embed_dim
