"""Config loading: import a config file, apply `--config.a.b=value` overrides, check it before compiling.

Configs are ml-collections `ConfigDict`s returned by `get_config()` in a file under `configs/`. They are
locked after loading, so a mistyped field is an error that names it instead of a silently new field.
"""
import ast
import difflib
import importlib.util
import json
import math
import os
import pathlib
import sys
from collections.abc import Sequence

import ml_collections

from lmjax import backend, fs


class UserError(Exception):
  """A problem the user can fix from its message alone; the CLI prints it without a traceback."""


class ConfigError(UserError, ValueError):
  """A config that cannot run, with a message saying which field to change."""


def load_config(path: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """Returns `get_config()` of the file at `path`, locked, with `overrides` ('a.b=value') applied."""
  config = _import_config_module(path).get_config()
  config.lock()
  _apply_overrides(config, overrides)
  return config


def load_saved_config(workdir: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """The config a run saved as WORKDIR/config.json, locked, with `overrides` applied."""
  path = os.path.join(workdir, "config.json")
  if not fs.exists(path):
    raise ConfigError(f"{path} does not exist; pass --config, or train in {workdir} first")
  from configs import base  # the schema: fields added since the run was saved get their defaults
  config = base.get_config()
  _merge(config, _lists_to_tuples(json.loads(fs.read_text(path))))
  config.lock()
  _apply_overrides(config, overrides)
  return config


def _merge(config: ml_collections.ConfigDict, saved: dict) -> None:
  for key, value in saved.items():
    if isinstance(value, dict) and isinstance(config.get(key), ml_collections.ConfigDict):
      _merge(config[key], value)
    else:
      config[key] = value


def _lists_to_tuples(tree):
  """JSON has no tuples; configs use them (e.g. sharding rules)."""
  if isinstance(tree, dict):
    return {k: _lists_to_tuples(v) for k, v in tree.items()}
  return tuple(_lists_to_tuples(v) for v in tree) if isinstance(tree, list) else tree


def _apply_overrides(config: ml_collections.ConfigDict, overrides: Sequence[str]) -> None:
  for override in overrides:
    name, sep, value = override.partition("=")
    if not sep:
      raise ConfigError(f"override {override!r} is not of the form FIELD=VALUE")
    set_field(config, name.removeprefix("config."), value)


def _import_config_module(path: str):
  """Imports a config file by path; its folder's parent goes on sys.path so `from configs import base` works."""
  file = pathlib.Path(path).resolve()
  if not file.is_file():
    raise ConfigError(f"config file {path!r} does not exist")
  root = str(file.parent.parent)
  if root not in sys.path:
    sys.path.insert(0, root)
  spec = importlib.util.spec_from_file_location(f"{file.parent.name}.{file.stem}", file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"config file {path!r} defines no get_config()")
  return module


def set_field(config: ml_collections.ConfigDict, dotted_name: str, text: str) -> None:
  """Sets `config.<dotted_name>` from command-line text, keeping the field's type; unknown names are errors."""
  *parents, leaf = dotted_name.split(".")
  node = config
  for depth, part in enumerate(parents):
    node = _child(node, part, ".".join(parents[:depth]))
  if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
    _raise_unknown(node, leaf, ".".join(parents))
  node[leaf] = _parse_like(text, node[leaf], dotted_name)


def _child(node, part: str, prefix: str):
  if not isinstance(node, ml_collections.ConfigDict) or part not in node:
    _raise_unknown(node, part, prefix)
  return node[part]


def _raise_unknown(node, name: str, prefix: str):
  full = f"{prefix}.{name}" if prefix else name
  known = list(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
  close = difflib.get_close_matches(name, known, n=3)
  hint = f"; did you mean {', '.join(close)}?" if close else f"; known fields here: {', '.join(sorted(known))}"
  raise ConfigError(f"unknown config field config.{full}{hint}")


def _parse_like(text: str, current, name: str):
  """Parses `text` as a Python literal (or a bare string) and converts it to the type of `current`."""
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text
  if isinstance(current, bool):
    if isinstance(value, str) and value.lower() in ("true", "false"):
      return value.lower() == "true"
    if not isinstance(value, bool):
      raise ConfigError(f"config.{name} is a bool; got {text!r} (use true/false)")
    return value
  if isinstance(current, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
    return float(value)
  if isinstance(current, tuple) and isinstance(value, (list, tuple)):
    return tuple(value)
  if isinstance(current, str) and not isinstance(value, str):
    return text
  if current is not None and not isinstance(value, type(current)):
    raise ConfigError(
        f"config.{name} is a {type(current).__name__}; got {text!r} ({type(value).__name__})")
  return value


def resolve_mesh_shape(mesh_config, device_count: int) -> tuple[int, int, int]:
  """(data, fsdp, tensor) sizes with at most one -1 filled by the remaining devices."""
  sizes = [mesh_config.data, mesh_config.fsdp, mesh_config.tensor]
  if sizes.count(-1) > 1:
    raise ConfigError(f"config.mesh has more than one -1 in (data, fsdp, tensor)={tuple(sizes)}; "
                      "set all but one explicitly")
  if any(s == 0 or s < -1 for s in sizes):
    raise ConfigError(f"config.mesh sizes must be positive or -1; got (data, fsdp, tensor)={tuple(sizes)}")
  known = math.prod(s for s in sizes if s != -1)
  if -1 in sizes:
    if device_count % known:
      raise ConfigError(f"config.mesh (data, fsdp, tensor)={tuple(sizes)}: {known} does not divide the "
                        f"{device_count} devices; change the explicit sizes")
    sizes[sizes.index(-1)] = device_count // known
  if math.prod(sizes) > device_count:
    raise ConfigError(f"config.mesh (data, fsdp, tensor)={tuple(sizes)} needs {math.prod(sizes)} devices but "
                      f"only {device_count} exist; shrink the mesh (or use -1 for one axis)")
  if math.prod(sizes) < device_count:
    raise ConfigError(f"config.mesh (data, fsdp, tensor)={tuple(sizes)} uses {math.prod(sizes)} of "
                      f"{device_count} devices; use -1 on one axis to fill the rest")
  return tuple(sizes)


def explicit_mesh_size(mesh_config) -> int:
  """data·fsdp·tensor of a mesh with every size given (no -1): the device count it asks for."""
  sizes = (mesh_config.data, mesh_config.fsdp, mesh_config.tensor)
  if any(s < 1 for s in sizes):
    raise ConfigError(f"config.mesh (data, fsdp, tensor)={sizes} has a -1, so it names no device count; "
                      "give every size (lmjax plan --mesh) or the count (--devices)")
  return math.prod(sizes)


def _raise_first_failed(checks: list[tuple[bool, str]]) -> None:
  for ok, message in checks:
    if not ok:
      raise ConfigError(message)


def check_model_config(config: ml_collections.ConfigDict, device_count: int) -> tuple[int, int, int]:
  """Raises ConfigError for a model its mesh cannot build or run; returns the resolved mesh shape."""
  m = config.model
  data, fsdp, tensor = resolve_mesh_shape(config.mesh, device_count)
  head_dim = m.head_dim or m.embed_dim / m.num_heads
  checks = [
      (m.head_dim > 0 or m.embed_dim % m.num_heads == 0,
       f"config.model.num_heads={m.num_heads} does not divide embed_dim={m.embed_dim}; change one of them "
       "(or set model.head_dim)"),
      (head_dim % 2 == 0, f"head size {head_dim} (model.head_dim, or embed_dim/num_heads) must be even for RoPE"),
      (m.num_heads % m.num_kv_heads == 0,
       f"config.model.num_kv_heads={m.num_kv_heads} must divide num_heads={m.num_heads}"),
      (m.num_heads % tensor == 0 and m.num_kv_heads % tensor == 0,
       f"config.mesh.tensor={tensor} must divide num_heads={m.num_heads} and num_kv_heads={m.num_kv_heads}"),
      (m.mlp_dim % tensor == 0, f"config.mesh.tensor={tensor} must divide model.mlp_dim={m.mlp_dim}"),
      (m.vocab_size % tensor == 0, f"config.mesh.tensor={tensor} must divide model.vocab_size={m.vocab_size}"),
      (m.embed_dim % fsdp == 0, f"config.mesh.fsdp={fsdp} must divide model.embed_dim={m.embed_dim}"),
      (m.dtype != "float16" and m.param_dtype != "float16",
       f"config.model.dtype={m.dtype!r}, param_dtype={m.param_dtype!r}: float16 needs loss scaling, which lmjax "
       "does not do (its gradients underflow); use bfloat16, which has float32's range at float16's size"),
      (m.dtype in ("float32", "bfloat16"), f"config.model.dtype={m.dtype!r} must be float32 or bfloat16"),
      (m.attention in backend.ATTENTION,
       f"config.model.attention={m.attention!r} must be one of {', '.join(backend.ATTENTION)}"),
  ]
  _raise_first_failed(checks)
  return data, fsdp, tensor


def check_train_config(config: ml_collections.ConfigDict, device_count: int) -> tuple[int, int, int]:
  """Raises ConfigError for anything that would fail at compile time; returns the resolved mesh shape."""
  t = config.train
  _raise_first_failed([
      (t.batch_size > 0, f"config.train.batch_size={t.batch_size} must be positive (sequences per step)"),
      (t.seq_len > 0, f"config.train.seq_len={t.seq_len} must be positive (tokens per sequence)"),
      (t.grad_accum_steps > 0, f"config.train.grad_accum_steps={t.grad_accum_steps} must be positive (1: none)"),
      (config.optim.lr > 0, f"config.optim.lr={config.optim.lr} must be positive: a negative learning rate "
       "climbs the loss instead of descending it"),
  ])
  data, fsdp, tensor = check_model_config(config, device_count)
  checks = [
      (t.batch_size % t.grad_accum_steps == 0,
       f"config.train.batch_size={t.batch_size} must be divisible by train.grad_accum_steps={t.grad_accum_steps}"),
      ((t.batch_size // t.grad_accum_steps) % (data * fsdp) == 0,
       f"micro-batch {t.batch_size // t.grad_accum_steps} (train.batch_size / train.grad_accum_steps) must be "
       f"divisible by the data-parallel size data*fsdp={data * fsdp}; change train.batch_size or the mesh"),
      (t.steps > 0, f"config.train.steps={t.steps} must be positive"),
      (config.data.streams > 0 and t.batch_size % config.data.streams == 0,
       f"config.data.streams={config.data.streams} must divide train.batch_size={t.batch_size}"),
  ]
  _raise_first_failed(checks)
  return data, fsdp, tensor
