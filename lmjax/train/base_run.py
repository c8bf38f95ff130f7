"""Starting a stage from an earlier stage's run: its saved config, tokenizer and latest parameters."""
import os

import jax
import jax.numpy as jnp

from lmjax import fs
from lmjax.config import ConfigError, load_saved_config
from lmjax.infer.load import LoadedModel, load_model
from lmjax.train.setup import TrainSetup, tokenizer_path
from lmjax.train.state import TrainState


def check_same_model(config, base_config) -> None:
  """A later stage continues the base model, so the architecture must be the base run's (and its parameter
  layout, model.scan_layers); the compute dtype and the remat policy may differ."""
  free = ("dtype", "remat", "lora")  # LoRA or not, the model is the same
  plain = lambda v: v.to_dict() if hasattr(v, "to_dict") else v  # a section (rope_scaling) by its values
  differ = [k for k in config.model
            if k not in free and plain(config.model[k]) != plain(base_config.model.get(k))]
  if differ:
    fixes = ", ".join(f"model.{k}={base_config.model[k]!r}" for k in differ)
    raise ConfigError(f"the model differs from the base run's in {', '.join(differ)}; set {fixes}")


def load_base_run(config, base_dir: str, field: str, *, scalar_head: bool = False):
  """(base config, LoadedModel) of the run in `base_dir`, named by config field `field` in errors.

  `scalar_head` loads a reward-model run (the transformer plus its scalar head).
  """
  if not base_dir:
    raise ConfigError(f"config.{field} is empty; set it to the run to start from")
  base_config = load_saved_config(base_dir)
  check_same_model(config, base_config)
  return base_config, load_model(base_config, base_dir, scalar_head=scalar_head)


def carry_tokenizer(base_config, base_dir: str, workdir: str) -> None:
  """Copies the base run's tokenizer into WORKDIR, so this run, and every run started from it, has one."""
  source, target = tokenizer_path(base_config, base_dir), os.path.join(workdir, "tokenizer.model")
  fs.makedirs(workdir)
  if fs.absolute(source) != fs.absolute(target):
    fs.copy(source, target)


def fresh_state(setup: TrainSetup, params) -> TrainState:
  """Step 0 with a copy of the given parameters in this stage's shardings and a new optimizer state.

  A copy, because the train step donates its state: the caller's `params` (say RL's frozen reference)
  must not share buffers with it.
  """
  params = jax.device_put(jax.tree.map(jnp.copy, params), setup.shardings.params)
  opt_state = jax.jit(setup.optimizer.init, out_shardings=setup.shardings.opt_state)(params)
  step = jax.device_put(jnp.zeros((), jnp.int32), setup.shardings.step)  # placed, so step 2 does not recompile
  return TrainState(step=step, params=params, opt_state=opt_state)


def start_state(setup: TrainSetup, params) -> TrainState:
  """Step 0 of a stage continuing `params`: fresh LoRA adapters when the setup trains them (the parameters
  themselves then reach the step as `setup.frozen(params)`), else a copy of them to train (`fresh_state`)."""
  return setup.init() if setup.lora is not None else fresh_state(setup, params)


def with_backbone(setup: TrainSetup, base: LoadedModel) -> TrainState:
  """A fresh scalar-head model (reward model, critic) whose transformer is the base run's."""
  params = jax.jit(lambda: setup.init().params, out_shardings=setup.shardings.params)()
  params["backbone"] = base.params
  return fresh_state(setup, params)
