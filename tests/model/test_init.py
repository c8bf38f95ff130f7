"""A correct start: every shipped config's step-0 loss is near ln(vocab) (the output head's init shrinks with
width, tied or not), `init_params` is pretraining's initialisation, logits are float32 whatever the compute
dtype, and float16 compute is refused."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lmjax import model
from lmjax.config import ConfigError, check_train_config, load_config
from lmjax.train.setup import build_train_setup
from tests.conftest import REPO, tiny_config

CONFIGS = ["base", "quickstart", "sft_quickstart", "rm_quickstart", "rl_quickstart", "speedrun_cpu",
           "speedrun_pod", "speedrun_gpu", "llama_125m", "llama3_1b", "llama3_8b"]


@pytest.mark.parametrize("name", [pytest.param(c, marks=pytest.mark.slow) if c in ("llama3_1b", "llama3_8b") else c
                                  for c in CONFIGS])  # the 128k-vocabulary ones take ~40 s each
def test_every_config_starts_within_half_a_nat_of_ln_vocab(name):
  config = load_config(str(REPO / "configs" / f"{name}.py"), ["model.num_layers=1", "model.scan_layers=False"])
  params = model.init_params(config, seed=0)
  tokens = np.random.default_rng(0).integers(0, config.model.vocab_size, (2, 32))
  logits = model.logits(config, params, tokens[:, :-1])
  logprobs = jax.nn.log_softmax(logits, axis=-1)
  loss = -float(jnp.take_along_axis(logprobs, jnp.asarray(tokens[:, 1:, None]), axis=-1).mean())
  assert abs(loss - math.log(config.model.vocab_size)) < 0.5, (name, loss)


def test_init_params_are_the_parameters_pretraining_starts_from():
  config = tiny_config()
  config.train.seed = 3
  started = build_train_setup(config).init().params
  for a, b in zip(jax.tree.leaves(model.init_params(config, seed=3)), jax.tree.leaves(started), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_bfloat16_compute_gives_float32_logits_from_a_float32_accumulation():
  config = tiny_config()
  config.model.dtype = "bfloat16"
  params = model.init_params(config, seed=0)
  logits = model.logits(config, params, np.arange(16)[None])
  assert logits.dtype == jnp.float32
  assert not np.array_equal(np.asarray(logits), np.asarray(logits.astype(jnp.bfloat16).astype(jnp.float32)))


@pytest.mark.parametrize("field", ["model.dtype=float16", "model.param_dtype=float16"])
def test_float16_is_refused_with_the_fix(field):
  config = load_config(str(REPO / "configs" / "quickstart.py"), [field])
  with pytest.raises(ConfigError, match="float16 needs loss scaling.*use bfloat16"):
    check_train_config(config, 1)
