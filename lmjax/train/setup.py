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
from lmjax.train import lora as lora_lib
from lmjax.train.state import abstract_params, abstract_train_state
from lmjax.train.step import Frozen


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
  # LoRA (config.model.lora): the state trains adapters on a frozen base of these shapes and shardings
  lora: lora_lib.Lora | None = None
  abstract_model_params: nnx.State | None = None  # the model's parameters (the base's, with LoRA)
  model_shardings: nnx.State | None = None
  trainable_count: int = 0  # parameters the state trains: the model's, or the adapters'

  def frozen(self, base_params) -> Frozen:
    """What the train step reads besides the state: LoRA's base (placed in this setup's shardings), else
    nothing (the state holds every parameter)."""
    if self.lora is None:
      return Frozen()
    return Frozen(jax.device_put(base_params, self.model_shardings), self.model_shardings, self.lora.merge)

  def abstract_frozen(self) -> Frozen:
    """`frozen` from shapes, for lowering a step without any parameters."""
    if self.lora is None:
      return Frozen()
    shapes = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                          self.abstract_model_params, self.model_shardings)
    return Frozen(shapes, self.model_shardings, self.lora.merge)


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

  `scalar_head` wraps the transformer in `WithScalarHead` (reward model, PPO critic). With LoRA
  (model.lora.rank > 0) the state trains fresh adapters (`lmjax.train.lora`) and the model's parameters
  come to the step as `setup.frozen(base params)`.
  """
  mesh_shape, mesh = _mesh(config, check_train_config, tokenizer_file, devices)
  rules = sharding.rules_from_config(config.rules)
  model_config, make_model = _model_maker(config, mesh, rules, scalar_head)
  schedule = optim.lr_schedule(config.optim, config.schedule, config.train.steps)
  optimizer = optim.make_optimizer(config.optim, schedule)
  graphdef, model_params, model_shardings = abstract_params(make_model, mesh, rules)
  adapters = lora_lib.from_config(config.model)
  if adapters is not None and scalar_head:
    raise ConfigError(f"config.model.lora.rank={adapters.rank}: LoRA adapts a plain transformer, not one with a "
                      "scalar head (the reward model, rl.advantage='gae'); set model.lora.rank=0")
  if adapters is None:
    make_params = lambda: nnx.split(make_model())[1]
  else:
    make_params = lambda: lora_lib.init_adapters(adapters, model_params, config.train.seed)
  init, abstract_state, shardings = abstract_train_state(make_params, optimizer, mesh, rules)
  replicated = sharding.replicated_fraction(model_params, model_shardings)
  _check_replication(config, mesh_shape, replicated)
  return TrainSetup(
      mesh=mesh, model_config=model_config, graphdef=graphdef,
      init=jax.jit(init, out_shardings=shardings), abstract_state=abstract_state, shardings=shardings,
      batch_sharding=sharding.batch_sharding(mesh, rules), optimizer=optimizer, schedule=schedule,
      param_count=param_count(model_config), replicated_fraction=replicated, lora=adapters,
      abstract_model_params=model_params, model_shardings=model_shardings,
      trainable_count=lora_lib.trainable_count(abstract_state.params))


def _check_replication(config, mesh_shape, replicated: float) -> None:
  """Fails fast when the mesh shards parameters but the rules leave too much of the model whole."""
  _, fsdp, tensor = mesh_shape
  if fsdp * tensor > 1 and replicated > config.mesh.max_replicated_fraction:
    raise ConfigError(f"{replicated:.1%} of parameters are replicated on every device although the mesh "
                      f"shards parameters (fsdp={fsdp}, tensor={tensor}); check config.rules, or raise "
                      f"config.mesh.max_replicated_fraction={config.mesh.max_replicated_fraction}")
