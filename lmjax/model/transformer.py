"""The decoder-only Llama-style transformer and its analytic parameter count.

`Transformer(tokens, positions, segment_ids) -> logits`; shape letters as in `layers.py`.
"""
import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from lmjax.model.layers import Attention, RMSNorm, SwiGLU, attention_mask, param
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

  def __call__(self, x_btd, positions_bt, mask_bts):
    x_btd = x_btd + self.attn(self.attn_norm(x_btd), positions_bt, mask_bts)
    x_btd = x_btd + self.mlp(self.mlp_norm(x_btd))
    return self.shard(x_btd, ("batch", "length", "act_embed"))


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
    # Gather the table's embed axis first (as FSDP does for every weight) so the lookup is local.
    table_vd = self.shard(self.embed[...].astype(self.cfg.dtype), ("vocab", None))
    x_btd = table_vd[tokens_bt]
    x_btd = self.shard(x_btd, ("batch", "length", "act_embed"))
    mask_bts = attention_mask(segment_ids_bt)
    for block in self.blocks:
      x_btd = block(x_btd, positions_bt, mask_bts)
    x_btd = self.final_norm(x_btd)
    unembed_dv = self.embed[...].T if self.cfg.tie_embeddings else self.unembed[...]
    logits_btv = x_btd @ unembed_dv.astype(self.cfg.dtype)
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
