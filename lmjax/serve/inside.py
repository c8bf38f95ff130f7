"""A look inside the transformer for one short prompt: every head's attention pattern, the residual stream's
norm at every layer and position, and the logit lens (what each layer's residual would predict).

Computed from the model's own modules: each block runs as in the forward pass (`Block.__call__`), and the
attention probabilities are recomputed from that block's query/key projections and RoPE, the same way
`lmjax.model.layers.attend` forms them. Shape letters as in `lmjax/model/layers.py`; L: layers, k here: top-k.

    inside = look_inside(loaded.graphdef, loaded.params, ids, top_k=5)
    inside.attention_lnts[layer, head]  # [t, t] probabilities, rows = query positions
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lmjax.infer.slots import round_up
from lmjax.model.layers import dense, rope


@dataclasses.dataclass(frozen=True)
class Inside:
  """The numbers of the "inside" view for a prompt of t tokens (L layers, n heads)."""
  attention_lnts: np.ndarray  # [L, n, t, t]: layer l, head n, query position t attends key position s
  residual_norm_lt: np.ndarray  # [L + 1, t]: the L2 norm of the stream entering block 0, then after each block
  lens_ids_ltk: np.ndarray  # [L + 1, t, k]: the top-k next tokens of each residual through final norm + unembed
  lens_probs_ltk: np.ndarray  # [L + 1, t, k]: their probabilities (the last row is the model's own prediction)


def layer_blocks(model) -> list:
  """The model's blocks as a list, one Block per layer (a scanned model's stacked Block sliced per layer)."""
  if not model.cfg.scan_layers:
    return list(model.blocks)
  graphdef, stacked = nnx.split(model.blocks)
  return [nnx.merge(graphdef, jax.tree.map(lambda x, i=i: x[i], stacked)) for i in range(model.cfg.num_layers)]


def attention_probs(block, x_btd, positions_bt) -> jax.Array:
  """[b, n, t, t] causal attention probabilities of one block whose input residual is x_btd."""
  attn, cfg_dtype = block.attn, block.attn.dtype
  x_btd = block.attn_norm(x_btd)
  t = x_btd.shape[1]
  q_btnh = rope(dense(x_btd, attn.q[...].astype(cfg_dtype)), positions_bt, attn.theta, t)
  k_btkh = rope(dense(x_btd, attn.k[...].astype(cfg_dtype)), positions_bt, attn.theta, t)
  k_btnh = jnp.repeat(k_btkh, q_btnh.shape[2] // k_btkh.shape[2], axis=2)  # query head j reads KV head j // g
  scores_bnts = jnp.einsum("btnh,bsnh->bnts", q_btnh, k_btnh, preferred_element_type=jnp.float32)
  scores_bnts = scores_bnts * q_btnh.shape[-1] ** -0.5
  causal_ts = jnp.arange(t)[:, None] >= jnp.arange(t)[None, :]
  return jax.nn.softmax(jnp.where(causal_ts, scores_bnts, jnp.finfo(jnp.float32).min), axis=-1)


@functools.partial(jax.jit, static_argnames=("graphdef", "top_k"))
def _inside(graphdef, params, tokens_1t, top_k: int):
  model = nnx.merge(graphdef, params)
  positions_1t = jnp.arange(tokens_1t.shape[1], dtype=jnp.int32)[None]
  segments_1t = jnp.ones_like(tokens_1t)
  x_1td = model.embed[...].astype(model.cfg.dtype)[tokens_1t]
  residuals, attention = [x_1td], []
  for block in layer_blocks(model):
    attention.append(attention_probs(block, x_1td, positions_1t)[0])
    x_1td = block(x_1td, positions_1t, segments_1t)[0]
    residuals.append(x_1td)
  stream_l1td = jnp.stack(residuals)
  norms_lt = jnp.linalg.norm(stream_l1td[:, 0].astype(jnp.float32), axis=-1)
  logits_ltv = jax.vmap(lambda x_1td: model.unembed_logits(model.final_norm(x_1td))[0])(stream_l1td)
  probs_ltk, ids_ltk = jax.lax.top_k(jax.nn.softmax(logits_ltv, axis=-1), top_k)
  return jnp.stack(attention), norms_lt, ids_ltk, probs_ltk


def look_inside(graphdef, params, ids: list[int], top_k: int = 5) -> Inside:
  """The inside view of the token ids `ids` (a row from position 0). The row is padded to a multiple of 32
  so prompts of similar length share one compiled program; causal attention keeps the padding out."""
  t = len(ids)
  tokens = np.zeros((1, round_up(t)), np.int32)
  tokens[0, :t] = ids
  attention, norms, lens_ids, lens_probs = jax.device_get(_inside(graphdef, params, tokens, top_k))
  return Inside(np.asarray(attention)[:, :, :t, :t], np.asarray(norms)[:, :t], np.asarray(lens_ids)[:, :t],
                np.asarray(lens_probs)[:, :t])
