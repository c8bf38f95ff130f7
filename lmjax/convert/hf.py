"""HuggingFace Llama, Mistral, Qwen2 and Qwen3 directories <-> (lmjax config, parameters), through
safetensors' numpy API (no torch).

    config, params = from_hf("path/to/llama")           # config.json + *.safetensors (sharded or not)
    lmjax.model.logits(config, params, tokens)          # [b, t, v]
    to_hf(config, params, "out/")                       # config.json + model.safetensors

Parameters are converted to config.model.param_dtype (float32: lmjax's master weights) on import and
written in their own dtype on export, so a float32 checkpoint round-trips bit for bit. Directories may be
local, file:// or gs://.
"""
import json
import os

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import safetensors.numpy
from flax import nnx

from lmjax import fs
from lmjax.config import UserError
from lmjax.convert import hf_config, hf_weights
from lmjax.data.documents import read_whole
from lmjax.model.forward import as_state, model_definition
from lmjax.model.stacking import stack_layers, unstack_layers

del ml_dtypes  # imported only to register numpy's bfloat16, which safetensors' numpy API needs for bf16 files

INDEX = "model.safetensors.index.json"


def read_hf_config(path: str) -> dict:
  file = os.path.join(path, "config.json")
  if not fs.exists(file):
    raise FileNotFoundError(f"no config.json in {path}: not a HuggingFace model directory")
  return json.loads(read_whole(file))


def safetensors_files(path: str) -> list[str]:
  """The checkpoint's files: those its index names (sharded), else every *.safetensors in `path`."""
  if fs.exists(os.path.join(path, INDEX)):
    weight_map = json.loads(read_whole(os.path.join(path, INDEX)))["weight_map"]
    return [os.path.join(path, name) for name in sorted(set(weight_map.values()))]
  files = sorted(os.path.join(path, n) for n in fs.listdir(path) if n.endswith(".safetensors"))
  if not files:
    raise FileNotFoundError(f"no *.safetensors in {path} (a pytorch_model.bin checkpoint must be re-saved "
                            "with transformers' save_pretrained(..., safe_serialization=True) first)")
  return files


def read_tensors(path: str) -> dict[str, np.ndarray]:
  """{name: numpy array} of every tensor in the checkpoint's safetensors files."""
  tensors = {}
  for file in safetensors_files(path):
    tensors |= _load_safetensors(file)
  return tensors


def _load_safetensors(file: str) -> dict[str, np.ndarray]:
  """A local file is read by safetensors itself; a remote one is downloaded into memory first."""
  if not fs.is_remote(file):
    return safetensors.numpy.load_file(fs.normalize(file))
  with fs.open(file, "rb") as f:
    return safetensors.numpy.load(f.read())


def _save_safetensors(tensors: dict[str, np.ndarray], file: str) -> None:
  metadata = {"format": "pt"}
  if not fs.is_remote(file):
    safetensors.numpy.save_file(tensors, fs.normalize(file), metadata=metadata)
    return
  with fs.open(file, "wb") as f:
    f.write(safetensors.numpy.save(tensors, metadata=metadata))


def from_hf(path: str, *, scan_layers: bool = False):
  """(lmjax config, params as the Transformer's nnx.State) of a HuggingFace Llama (incl. Llama 3.1/3.2's
  'llama3' RoPE), Mistral, Qwen2/2.5 or Qwen3 directory.

  The config is `configs/base.py` with model.* taken from config.json, and model.scan_layers as given (the
  parameter layout). A model lmjax cannot represent (another RoPE scaling, output biases, a short sliding
  window, ...) is a ConfigError naming the field.
  """
  config = hf_config.lmjax_config(read_hf_config(path), source=os.path.join(path, "config.json"))
  config.model.scan_layers = scan_layers
  _, abstract = model_definition(config)
  m = config.model
  shapes = nnx.to_pure_dict(abstract)
  shapes = unstack_layers(shapes, m.num_layers) if scan_layers else shapes
  try:
    pure = hf_weights.from_hf_tensors(read_tensors(path), shapes, m, np.dtype(m.param_dtype))
  except ValueError as e:
    raise UserError(f"{path}: {e}") from None
  pure = stack_layers(pure) if scan_layers else pure
  nnx.replace_by_pure_dict(abstract, jax.tree.map(jnp.asarray, pure))
  return config, abstract


def to_hf(config, params, out_dir: str, *, tokenizer=None) -> str:
  """Writes `out_dir`/config.json + model.safetensors, which transformers' `AutoModelForCausalLM.from_pretrained`
  loads as the architecture the model's fields describe (Llama, Qwen2 with q/k/v biases, Qwen3 with q/k norms;
  Mistral for a run imported from one, model.hf_architecture).

  `tokenizer` (an lmjax Tokenizer): its sentencepiece file goes along as tokenizer.model, and its
  bos/eos/pad ids into config.json. max_position_embeddings is config.train.seq_len (RoPE itself has no
  length limit).
  """
  m = config.model
  pure = jax.device_get(nnx.to_pure_dict(as_state(config, params)))
  pure = unstack_layers(pure, m.num_layers) if m.scan_layers else pure
  tensors = hf_weights.to_hf_tensors(pure, m)
  dtype = str(next(iter(tensors.values())).dtype)
  special = None
  if tokenizer is not None:
    special = {"bos": tokenizer.bos_id, "eos": tokenizer.eos_id, "pad": tokenizer.pad_id}
  hf = hf_config.hf_config(m, max_position_embeddings=config.train.seq_len, dtype=dtype, special_ids=special)
  fs.makedirs(out_dir)
  fs.write_text(os.path.join(out_dir, "config.json"), json.dumps(hf, indent=2))
  _save_safetensors(tensors, os.path.join(out_dir, "model.safetensors"))
  if tokenizer is not None:
    fs.copy(tokenizer.path, os.path.join(out_dir, "tokenizer.model"))
  return out_dir
