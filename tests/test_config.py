"""Configs: every shipped config builds with the parameter count of the analytic formula; overrides
set known fields and reject unknown ones; impossible configs fail before compiling, naming the fix."""
import pathlib

import jax
import pytest
from flax import nnx

from lmjax.config import ConfigError, check_train_config, load_config, resolve_mesh_shape
from lmjax.model import ModelConfig, Transformer, param_count
from tests.conftest import REPO

MODEL_CONFIGS = sorted(p for p in (REPO / "configs").glob("*.py") if p.stem not in ("__init__", "clean"))


@pytest.mark.parametrize("path", MODEL_CONFIGS, ids=lambda p: p.stem)
def test_every_config_builds_with_the_analytic_param_count(path: pathlib.Path):
  config = load_config(str(path))
  model_config = ModelConfig.from_config(config.model)
  abstract = nnx.eval_shape(lambda: Transformer(model_config, rngs=nnx.Rngs(0)))
  built = sum(x.size for x in jax.tree.leaves(nnx.state(abstract)))
  assert built == param_count(model_config)


@pytest.mark.parametrize("name, expected", [("llama3_8b", 8.03e9), ("llama3_1b", 1.1e9), ("llama_125m", 1.25e8)])
def test_size_presets_are_the_size_their_name_says(name, expected):
  config = load_config(str(REPO / "configs" / f"{name}.py"))
  assert param_count(ModelConfig.from_config(config.model)) == pytest.approx(expected, rel=0.1)


def test_override_sets_a_field_with_its_type():
  config = load_config(str(REPO / "configs" / "quickstart.py"), ["optim.lr=3e-4", "train.steps=7",
                                                                 "config.model.tie_embeddings=true"])
  assert config.optim.lr == 3e-4 and config.train.steps == 7 and config.model.tie_embeddings is True


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1e-3", "config.optim.lrr; did you mean lr"),
    ("optimizer.lr=1e-3", "config.optimizer"),
    ("train.steps=many", "config.train.steps is a int"),
    ("model.tie_embeddings=2", "config.model.tie_embeddings is a bool"),
])
def test_unknown_or_mistyped_override_is_an_error_naming_it(override, message):
  with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
    load_config(str(REPO / "configs" / "quickstart.py"), [override])


def _config(**fields):
  config = load_config(str(REPO / "configs" / "quickstart.py"))
  for dotted, value in fields.items():
    section, name = dotted.split("__")
    config[section][name] = value
  return config


@pytest.mark.parametrize("fields, devices, message", [
    (dict(model__num_heads=3), 8, "num_heads=3 does not divide embed_dim=256"),
    (dict(model__num_kv_heads=3), 8, "num_kv_heads=3 must divide num_heads=4"),
    (dict(train__batch_size=12), 8, "divisible by the data-parallel size data\\*fsdp=8"),
    (dict(mesh__data=4, mesh__fsdp=4), 8, "needs 16 devices but only 8 exist"),
    (dict(mesh__tensor=8, mesh__fsdp=1), 8, "tensor=8 must divide num_heads=4"),
    (dict(train__batch_size=16, train__grad_accum_steps=3), 1, "grad_accum_steps=3"),
    (dict(data__streams=3), 1, "data.streams=3 must divide train.batch_size"),
])
def test_impossible_configs_fail_before_compiling_with_the_fix(fields, devices, message):
  with pytest.raises(ConfigError, match=message):
    check_train_config(_config(**fields), devices)


def test_mesh_minus_one_takes_the_remaining_devices():
  config = _config(mesh__data=2, mesh__fsdp=-1, mesh__tensor=2)
  assert resolve_mesh_shape(config.mesh, 8) == (2, 2, 2)
