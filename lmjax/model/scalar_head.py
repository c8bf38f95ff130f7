"""A transformer with a scalar head: the reward model (score at the last real token) and PPO's value
function (a value per position). The head is one vector read off the final hidden state."""
import jax.numpy as jnp
from flax import nnx

from lmjax.model.transformer import ModelConfig, Transformer


class WithScalarHead(nnx.Module):
  """(logits [b, t, v], scalars [b, t]) from one pass of the backbone."""

  def __init__(self, cfg: ModelConfig, backbone: Transformer):
    self.backbone = backbone
    self.head = nnx.Param(jnp.zeros((cfg.embed_dim,), cfg.param_dtype), logical_axes=("embed",))
    self.bias = nnx.Param(jnp.zeros((), cfg.param_dtype), logical_axes=())

  def __call__(self, tokens_bt, positions_bt, segment_ids_bt):
    x_btd = self.backbone.hidden_states(tokens_bt, positions_bt, segment_ids_bt)
    scalars_bt = x_btd.astype(jnp.float32) @ self.head[...].astype(jnp.float32) + self.bias[...]
    return self.backbone.unembed_logits(x_btd), scalars_bt
