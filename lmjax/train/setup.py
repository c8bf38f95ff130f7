"""From a config to everything a loop needs: mesh, model definition, optimizer, state shardings.

Shared by every stage that trains or restores a model, so they all build it the same way; inference takes
the model's part alone (`build_model_setup`), with no optimizer or schedule.
"""
import dataclasses
import os
from collections.abc import Callable

import jax
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding

from lmjax import backend, fs, optim, sharding
from lmjax.config import ConfigError, check_model_config, check_train_config
from lmjax.data.tokenizer import Tokenizer
from lmjax.model import ModelConfig, Transformer, param_count
from lmjax.model.scalar_head import WithScalarHead
from lmjax.train.state import abstract_params, abstract_train_state


@dataclasses.dataclass(frozen=True)
class TrainSetup:
  mesh: Mesh
  model_config: ModelConfig
  graphdef: nnx.GraphDef
  init: Callable  # () -> TrainState, jitted, outputs already sharded
  abstract_state: object
  shardings: object
  batch_sharding: NamedSharding
  optimizer: optax.GradientTransformation
  schedule: optax.Schedule
  param_count: int
  replicated_fraction: float


def tokenizer_path(config, workdir: str) -> str:
  return config.data.tokenizer or os.path.join(workdir, "tokenizer.model")


def tokens_dir(config, workdir: str) -> str:
  return config.data.tokens_dir or os.path.join(workdir, "tokens")


def check_tokenizer(config, path: str) -> None:
  """The tokenizer must exist and have exactly model.vocab_size tokens."""
  if not fs.exists(path):
    raise ConfigError(f"no tokenizer at {path}; run `lmjax tokenizer` first or set config.data.tokenizer")
  size = Tokenizer(path).vocab_size
  if size != config.model.vocab_size:
    raise ConfigError(f"config.model.vocab_size={config.model.vocab_size} but the tokenizer {path} has "
                      f"{size} tokens; set config.model.vocab_size={size}")


@dataclasses.dataclass(frozen=True)
class ModelSetup:
  """What loading and scoring a model needs: its mesh, definition, parameter shapes and shardings, and the
  sharding of batches."""
  mesh: Mesh
  model_config: ModelConfig
  graphdef: nnx.GraphDef
  abstract_params: nnx.State
  param_shardings: nnx.State
  batch_sharding: NamedSharding


def _model_maker(config, mesh: Mesh, rules, scalar_head: bool) -> tuple[ModelConfig, Callable[[], nnx.Module]]:
  """(model config, make_model): the transformer, wrapped in `WithScalarHead` for a reward model or critic."""
  model_config = ModelConfig.from_config(config.model)
  shard = sharding.Shard(mesh, rules)
  seed = config.train.seed

  def make_model():
    backbone = Transformer(model_config, shard, rngs=nnx.Rngs(params=seed))
    return WithScalarHead(model_config, backbone) if scalar_head else backbone

  return model_config, make_model


def _mesh(config, check, tokenizer_file: str | None, devices) -> tuple[tuple[int, int, int], Mesh]:
  """(mesh shape, mesh) after `check(config, device count)` and the tokenizer check, if a file is given."""
  backend.use_compilation_cache(config.runtime.compilation_cache_dir)
  devices = jax.devices() if devices is None else devices
  mesh_shape = check(config, len(devices))
  if tokenizer_file is not None:
    check_tokenizer(config, tokenizer_file)
  return mesh_shape, sharding.make_mesh(mesh_shape, devices)


def build_model_setup(config, tokenizer_file: str | None = None, devices=None, *,
                      scalar_head: bool = False) -> ModelSetup:
  """The model's pieces alone, for inference: no optimizer or schedule is built."""
  mesh_shape, mesh = _mesh(config, check_model_config, tokenizer_file, devices)
  rules = sharding.rules_from_config(config.rules)
  model_config, make_model = _model_maker(config, mesh, rules, scalar_head)
  graphdef, params, shardings = abstract_params(make_model, mesh, rules)
  _check_replication(config, mesh_shape, sharding.replicated_fraction(params, shardings))
  return ModelSetup(mesh=mesh, model_config=model_config, graphdef=graphdef, abstract_params=params,
                    param_shardings=shardings, batch_sharding=sharding.batch_sharding(mesh, rules))


def build_train_setup(config, tokenizer_file: str | None = None, devices=None, *,
                      scalar_head: bool = False) -> TrainSetup:
  """Checks the config against the devices (and the tokenizer, if given) and builds the training pieces.

  `scalar_head` wraps the transformer in `WithScalarHead` (reward model, PPO critic).
  """
  mesh_shape, mesh = _mesh(config, check_train_config, tokenizer_file, devices)
  rules = sharding.rules_from_config(config.rules)
  model_config, make_model = _model_maker(config, mesh, rules, scalar_head)
  schedule = optim.lr_schedule(config.optim, config.schedule, config.train.steps)
  optimizer = optim.make_optimizer(config.optim, schedule)
  graphdef, init, abstract_state, shardings = abstract_train_state(make_model, optimizer, mesh, rules)
  replicated = sharding.replicated_fraction(abstract_state.params, shardings.params)
  _check_replication(config, mesh_shape, replicated)
  return TrainSetup(
      mesh=mesh, model_config=model_config, graphdef=graphdef,
      init=jax.jit(init, out_shardings=shardings), abstract_state=abstract_state, shardings=shardings,
      batch_sharding=sharding.batch_sharding(mesh, rules), optimizer=optimizer, schedule=schedule,
      param_count=param_count(model_config), replicated_fraction=replicated)


def _check_replication(config, mesh_shape, replicated: float) -> None:
  """Fails fast when the mesh shards parameters but the rules leave too much of the model whole."""
  _, fsdp, tensor = mesh_shape
  if fsdp * tensor > 1 and replicated > config.mesh.max_replicated_fraction:
    raise ConfigError(f"{replicated:.1%} of parameters are replicated on every device although the mesh "
                      f"shards parameters (fsdp={fsdp}, tensor={tensor}); check config.rules, or raise "
                      f"config.mesh.max_replicated_fraction={config.mesh.max_replicated_fraction}")
