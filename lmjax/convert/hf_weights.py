"""The one mapping between lmjax's parameter tree and HuggingFace Llama tensor names.

HF stores every projection as torch.nn.Linear's [out, in]; lmjax as [*in, *out] with heads split out:
q [d, n, h] <-> q_proj [n·h, d], o [n, h, d] <-> o_proj [d, n·h], gate [d, f] <-> gate_proj [f, d].
Both use rotate-half RoPE with the same head layout, so q and k need no permutation (the parity tests
pin this), and HF's GQA `repeat_kv` serves query head i from KV head i // g, as jax's attention does.
"""
import math

import numpy as np

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
TOP = (
    ("model.embed_tokens.weight", ("embed",), None),
    ("model.norm.weight", ("final_norm", "scale"), None),
    ("lm_head.weight", ("unembed",), 1),
)
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)  # a buffer some older checkpoints saved; recomputed, not learned


def names(num_layers: int, tie_embeddings: bool) -> list[tuple[str, tuple, int | None]]:
  """Every (HF name, lmjax path, input dims) of a model; a tied model has no lm_head / unembed."""
  top = [entry for entry in TOP if not (tie_embeddings and entry[0] == "lm_head.weight")]
  block = [(f"model.layers.{i}.{name}", ("blocks", i, *path), dims) for i in range(num_layers)
           for name, path, dims in BLOCK]
  return top + block


def to_hf_layout(x: np.ndarray, in_dims: int | None) -> np.ndarray:
  """An lmjax kernel [*in, *out] as torch's Linear weight [out, in] (contiguous); other parameters as is."""
  if in_dims is None:
    return np.ascontiguousarray(x)
  return np.ascontiguousarray(x.reshape(math.prod(x.shape[:in_dims]), -1).T)


def hf_shape(shape: tuple[int, ...], in_dims: int | None) -> tuple[int, ...]:
  """The HF tensor shape of an lmjax parameter of `shape`."""
  return shape if in_dims is None else (math.prod(shape[in_dims:]), math.prod(shape[:in_dims]))


def from_hf_layout(w: np.ndarray, shape: tuple[int, ...], in_dims: int | None) -> np.ndarray:
  """Torch's [out, in] weight as an lmjax kernel of `shape` [*in, *out] (the inverse of `to_hf_layout`)."""
  return w.reshape(shape) if in_dims is None else w.T.reshape(shape)


def _get(tree: dict, path: tuple):
  for key in path:
    tree = tree[key]
  return tree


def _set(tree: dict, path: tuple, value) -> None:
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def to_hf_tensors(params: dict, num_layers: int, tie_embeddings: bool) -> dict[str, np.ndarray]:
  """{HF name: numpy array} from lmjax's pure parameter dict (`nnx.to_pure_dict`), dtypes kept."""
  return {name: to_hf_layout(np.asarray(_get(params, path)), dims)
          for name, path, dims in names(num_layers, tie_embeddings)}


def from_hf_tensors(tensors, shapes: dict, num_layers: int, tie_embeddings: bool, dtype) -> dict:
  """lmjax's pure parameter dict from a mapping {HF name: array}; `shapes`: a pure dict of leaves with .shape.

  Every tensor must be used and every parameter found: a missing or unknown name is an error naming it
  (an unknown one means a model lmjax would silently compute differently).
  """
  entries = names(num_layers, tie_embeddings)
  wanted = {name for name, _, _ in entries} | ({"lm_head.weight"} if tie_embeddings else set())
  missing = sorted({name for name, _, _ in entries} - set(tensors))
  unknown = sorted(n for n in tensors if n not in wanted and not n.endswith(IGNORED_SUFFIXES))
  if missing or unknown:
    raise ValueError(f"the checkpoint's tensors do not match a {num_layers}-layer Llama"
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
