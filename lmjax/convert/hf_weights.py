"""The one mapping between lmjax's parameter tree and the tensor names of HuggingFace's Llama-shaped models
(Llama, Mistral, Qwen2, Qwen3 share them).

HF stores every projection as torch.nn.Linear's [out, in]; lmjax as [*in, *out] with heads split out:
q [d, n, h] <-> q_proj [n·h, d], o [n, h, d] <-> o_proj [d, n·h], gate [d, f] <-> gate_proj [f, d], and a
bias q_bias [n, h] <-> q_proj.bias [n·h]. Both use rotate-half RoPE with the same head layout, so q and k need
no permutation (the parity tests pin this), and HF's GQA `repeat_kv` serves query head i from KV head i // g,
as jax's attention does.
"""
import math

import numpy as np

BIAS = 0  # "input dims" of a bias: no input, its [heads, h] flattened to [heads·h]
# (HF name under model.layers.{i}., lmjax path under blocks/{i}, input dims of the lmjax kernel; None = copy)
BLOCK = (
    ("self_attn.q_proj.weight", ("attn", "q"), 1),
    ("self_attn.k_proj.weight", ("attn", "k"), 1),
    ("self_attn.v_proj.weight", ("attn", "v"), 1),
    ("self_attn.o_proj.weight", ("attn", "o"), 2),
    ("mlp.gate_proj.weight", ("mlp", "gate"), 1),
    ("mlp.up_proj.weight", ("mlp", "up"), 1),
    ("mlp.down_proj.weight", ("mlp", "down"), 1),
    ("input_layernorm.weight", ("attn_norm", "scale"), None),
    ("post_attention_layernorm.weight", ("mlp_norm", "scale"), None),
)
QKV_BIAS = (  # model.qkv_bias (Qwen2)
    ("self_attn.q_proj.bias", ("attn", "q_bias"), BIAS),
    ("self_attn.k_proj.bias", ("attn", "k_bias"), BIAS),
    ("self_attn.v_proj.bias", ("attn", "v_bias"), BIAS),
)
QK_NORM = (  # model.qk_norm (Qwen3)
    ("self_attn.q_norm.weight", ("attn", "q_norm", "scale"), None),
    ("self_attn.k_norm.weight", ("attn", "k_norm", "scale"), None),
)
TOP = (
    ("model.embed_tokens.weight", ("embed",), None),
    ("model.norm.weight", ("final_norm", "scale"), None),
    ("lm_head.weight", ("unembed",), 1),
)
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)  # a buffer some older checkpoints saved; recomputed, not learned


def names(model) -> list[tuple[str, tuple, int | None]]:
  """Every (HF name, lmjax path, input dims) of a model with lmjax model fields `model` (config.model or a
  ModelConfig); a tied model has no lm_head / unembed."""
  top = [entry for entry in TOP if not (model.tie_embeddings and entry[0] == "lm_head.weight")]
  block_entries = BLOCK + (QKV_BIAS if model.qkv_bias else ()) + (QK_NORM if model.qk_norm else ())
  block = [(f"model.layers.{i}.{name}", ("blocks", i, *path), dims) for i in range(model.num_layers)
           for name, path, dims in block_entries]
  return top + block


def to_hf_layout(x: np.ndarray, in_dims: int | None) -> np.ndarray:
  """An lmjax kernel [*in, *out] as torch's Linear weight [out, in] (contiguous), a bias flattened; other
  parameters as is."""
  if in_dims is None:
    return np.ascontiguousarray(x)
  if in_dims == BIAS:
    return np.ascontiguousarray(x.reshape(-1))
  return np.ascontiguousarray(x.reshape(math.prod(x.shape[:in_dims]), -1).T)


def hf_shape(shape: tuple[int, ...], in_dims: int | None) -> tuple[int, ...]:
  """The HF tensor shape of an lmjax parameter of `shape`."""
  if in_dims is None:
    return shape
  if in_dims == BIAS:
    return (math.prod(shape),)
  return (math.prod(shape[in_dims:]), math.prod(shape[:in_dims]))


def from_hf_layout(w: np.ndarray, shape: tuple[int, ...], in_dims: int | None) -> np.ndarray:
  """Torch's [out, in] weight as an lmjax kernel of `shape` [*in, *out] (the inverse of `to_hf_layout`)."""
  return w.reshape(shape) if in_dims in (None, BIAS) else w.T.reshape(shape)


def _get(tree: dict, path: tuple):
  for key in path:
    tree = tree[key]
  return tree


def _set(tree: dict, path: tuple, value) -> None:
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def to_hf_tensors(params: dict, model) -> dict[str, np.ndarray]:
  """{HF name: numpy array} from lmjax's pure parameter dict (`nnx.to_pure_dict`), dtypes kept."""
  return {name: to_hf_layout(np.asarray(_get(params, path)), dims) for name, path, dims in names(model)}


def from_hf_tensors(tensors, shapes: dict, model, dtype) -> dict:
  """lmjax's pure parameter dict from a mapping {HF name: array}; `shapes`: a pure dict of leaves with .shape.

  Every tensor must be used and every parameter found: a missing or unknown name is an error naming it
  (an unknown one means a model lmjax would silently compute differently).
  """
  entries = names(model)
  wanted = {name for name, _, _ in entries} | ({"lm_head.weight"} if model.tie_embeddings else set())
  missing = sorted({name for name, _, _ in entries} - set(tensors))
  unknown = sorted(n for n in tensors if n not in wanted and not n.endswith(IGNORED_SUFFIXES))
  if missing or unknown:
    raise ValueError(f"the checkpoint's tensors do not match the {model.num_layers}-layer model its config.json "
                     "describes"
                     + (f"; missing: {', '.join(missing[:8])}" if missing else "")
                     + (f"; not part of lmjax's model: {', '.join(unknown[:8])}" if unknown else ""))
  params = {}
  for name, path, dims in entries:
    shape = tuple(_get(shapes, path).shape)
    w = np.asarray(tensors[name])
    if w.shape != hf_shape(shape, dims):
      raise ValueError(f"{name} has shape {w.shape}; the config implies {hf_shape(shape, dims)}")
    _set(params, path, from_hf_layout(w, shape, dims).astype(dtype))
  return params
