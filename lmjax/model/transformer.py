"""The decoder-only Llama-style transformer and its analytic parameter count.

`Transformer(tokens, positions, segment_ids) -> logits`; shape letters as in `layers.py`.
"""
import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from lmjax.model.layers import Attention, RMSNorm, SwiGLU, attention_mask, dense, param
from lmjax.sharding import Shard


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

  @classmethod
  def from_config(cls, model_config) -> "ModelConfig":
    return cls(**{f.name: model_config[f.name] for f in dataclasses.fields(cls)})

  def __post_init__(self):
    object.__setattr__(self, "dtype", jnp.dtype(self.dtype))
    object.__setattr__(self, "param_dtype", jnp.dtype(self.param_dtype))


class Block(nnx.Module):
  """Pre-norm residual block: x + attn(norm(x)), then + mlp(norm(x))."""

  def __init__(self, cfg: ModelConfig, shard: Shard, *, rngs: nnx.Rngs):
    self.attn_norm = RMSNorm(cfg.embed_dim, eps=cfg.norm_eps, param_dtype=cfg.param_dtype)
    self.attn = Attention(cfg, shard, rngs=rngs)
    self.mlp_norm = RMSNorm(cfg.embed_dim, eps=cfg.norm_eps, param_dtype=cfg.param_dtype)
    self.mlp = SwiGLU(cfg, shard, rngs=rngs)
    self.shard = shard

  def __call__(self, x_btd, positions_bt, mask_bts, cache=None):
    attended = self.attn(self.attn_norm(x_btd), positions_bt, mask_bts, cache)
    attn_btd, cache = attended if cache is not None else (attended, None)
    x_btd = x_btd + attn_btd
    x_btd = x_btd + self.mlp(self.mlp_norm(x_btd))
    return self.shard(x_btd, ("batch", "length", "act_embed")), cache


class Transformer(nnx.Module):
  """Token ids [b, t] → next-token logits [b, t, v] (float32)."""

  def __init__(self, cfg: ModelConfig, shard: Shard = Shard(), *, rngs: nnx.Rngs):
    self.embed = param(rngs, (cfg.vocab_size, cfg.embed_dim), ("vocab", "embed"), 1.0, cfg.param_dtype)
    self.blocks = nnx.List([Block(cfg, shard, rngs=rngs) for _ in range(cfg.num_layers)])
    self.final_norm = RMSNorm(cfg.embed_dim, eps=cfg.norm_eps, param_dtype=cfg.param_dtype)
    if not cfg.tie_embeddings:
      self.unembed = param(rngs, (cfg.embed_dim, cfg.vocab_size), ("embed", "vocab"), cfg.init_std,
                           cfg.param_dtype)
    self.cfg, self.shard = cfg, shard

  def __call__(self, tokens_bt, positions_bt, segment_ids_bt):
    """Logits [b, t, v] for packed sequences: attention is causal and stays within each segment."""
    return self.unembed_logits(self.hidden_states(tokens_bt, positions_bt, segment_ids_bt))

  def hidden_states(self, tokens_bt, positions_bt, segment_ids_bt):
    """The final-norm residual stream [b, t, d], which the LM head and any scalar head read."""
    x_btd, _ = self._forward(tokens_bt, positions_bt, attention_mask(segment_ids_bt), None)
    return x_btd

  def decode(self, tokens_bt, positions_bt, cache: list):
    """(logits [b, t, v], cache) for tokens at `positions` (consecutive per row), attending to the cache.

    The cache holds one (keys, values) pair of [b, S, k, h] per layer (see `init_cache`); the new tokens'
    keys/values go to slots positions[b, 0] onwards, and a token at position p sees slots 0..p. Prefill and
    one-token decode steps are the same call.
    """
    slots_s = jnp.arange(cache[0][0].shape[1])
    mask_bts = slots_s[None, None, :] <= positions_bt[:, :, None]
    x_btd, cache = self._forward(tokens_bt, positions_bt, mask_bts, cache)
    return self.unembed_logits(x_btd), cache

  def init_cache(self, batch_size: int, max_length: int) -> list:
    """An empty KV cache: per layer, zero keys and values [b, max_length, k, h] in the compute dtype."""
    c = self.cfg
    shape = (batch_size, max_length, c.num_kv_heads, c.embed_dim // c.num_heads)
    return [(jnp.zeros(shape, c.dtype), jnp.zeros(shape, c.dtype)) for _ in range(c.num_layers)]

  def _forward(self, tokens_bt, positions_bt, mask_bts, cache):
    # Gather the table's embed axis first (as FSDP does for every weight) so the lookup is local.
    table_vd = self.shard(self.embed[...].astype(self.cfg.dtype), ("vocab", None))
    x_btd = self.shard(table_vd[tokens_bt], ("batch", "length", "act_embed"))
    new_cache = []
    for i, block in enumerate(self.blocks):
      x_btd, layer_cache = block(x_btd, positions_bt, mask_bts, None if cache is None else cache[i])
      new_cache.append(layer_cache)
    return self.final_norm(x_btd), (None if cache is None else new_cache)

  def unembed_logits(self, x_btd):
    """Float32 logits [b, t, v] from final hidden states."""
    unembed_dv = self.embed[...].T if self.cfg.tie_embeddings else self.unembed[...]
    logits_btv = dense(x_btd, unembed_dv.astype(self.cfg.dtype))
    return self.shard(logits_btv, ("batch", "length", "act_vocab")).astype(jnp.float32)


def param_count(cfg: ModelConfig) -> int:
  """The number of parameters, from the shapes alone (checked against the built model in tests)."""
  d, n, k, f, v = cfg.embed_dim, cfg.num_heads, cfg.num_kv_heads, cfg.mlp_dim, cfg.vocab_size
  h = d // n
  per_block = 2 * d + d * n * h + 2 * d * k * h + n * h * d + 3 * d * f
  return v * d + (0 if cfg.tie_embeddings else d * v) + cfg.num_layers * per_block + d


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
  """Training FLOPs per token, PaLM's convention: 6·(matmul parameters) + 12·layers·seq_len·embed_dim.

  The embedding lookup is not a matmul (unless tied, when it is also the output projection).
  """
  lookup = 0 if cfg.tie_embeddings else cfg.vocab_size * cfg.embed_dim
  return 6 * (param_count(cfg) - lookup) + 12 * cfg.num_layers * seq_len * cfg.embed_dim
