"""Load a trained model for inference: the run's config, its tokenizer and the latest checkpoint's params."""
import dataclasses
import os

import jax
from flax import nnx

from lmjax import fs, sharding
from lmjax.config import load_saved_config
from lmjax.data.tokenizer import Tokenizer
from lmjax.infer.context import context_length
from lmjax.train import checkpoint, lora
from lmjax.train.setup import ModelSetup, build_model_setup, tokenizer_path
from lmjax.train.state import state_shardings


@dataclasses.dataclass(frozen=True)
class LoadedModel:
  graphdef: nnx.GraphDef
  params: nnx.State
  tokenizer: Tokenizer
  step: int
  context: int | None = None  # tokens of prompt plus reply the model takes (lmjax.infer.context); None: unbounded

  def model(self) -> nnx.Module:
    return nnx.merge(self.graphdef, self.params)


def load_model(config, workdir: str, *, scalar_head: bool = False) -> LoadedModel:
  """The latest checkpoint in WORKDIR/checkpoints, placed on the config's mesh (`scalar_head`: a reward model).

  Only the parameters are read: no optimizer or schedule is built and the optimizer state stays on disk.
  """
  tok_path = tokenizer_path(config, workdir)
  setup = build_model_setup(config, tok_path, scalar_head=scalar_head)
  params, step = latest_params(config, setup, workdir)
  return LoadedModel(setup.graphdef, params, Tokenizer(tok_path), step, context_length(config))


def latest_params(config, setup: ModelSetup, workdir: str):
  """(parameters, step) of the newest readable checkpoint in WORKDIR/checkpoints, in the setup's shardings
  (a damaged newer one is reported and skipped). A LoRA run's adapters come merged into its base run's."""
  manager = checkpoint.make_manager(os.path.join(workdir, "checkpoints"), keep=config.checkpoint.keep)
  if manager.latest_step() is None:
    raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints; train a model there first")
  adapters = lora.from_config(config.model)
  if adapters is None:
    step, params = checkpoint.newest_params(manager, setup.abstract_params, setup.param_shardings)
    return params, step
  shapes = jax.eval_shape(lambda: lora.init_adapters(adapters, setup.abstract_params, seed=0))
  shardings = state_shardings(shapes, setup.mesh, sharding.rules_from_config(config.rules))
  step, trained = checkpoint.newest_params(manager, shapes, shardings)
  base_dir = lora.base_workdir(config)
  base_params, _ = latest_params(load_saved_config(base_dir), setup, base_dir)
  return jax.jit(adapters.merge, out_shardings=setup.param_shardings)(base_params, trained), step


def run_tokenizer(workdir: str) -> Tokenizer:
  """The tokenizer a run used: the one its saved config names, else WORKDIR/tokenizer.model."""
  path = os.path.join(workdir, "tokenizer.model")
  if fs.exists(os.path.join(workdir, "config.json")):
    path = tokenizer_path(load_saved_config(workdir), workdir)
  if not fs.exists(path):
    raise FileNotFoundError(f"no tokenizer at {path}; run `lmjax tokenizer` first or pass --tokenizer")
  return Tokenizer(path)
