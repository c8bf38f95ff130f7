"""Loading for inference reads the parameters alone: no optimizer or schedule is built."""
import jax
import numpy as np
import pytest

from lmjax import optim
from lmjax.infer.load import load_model
from lmjax.train import checkpoint
from lmjax.train.setup import build_train_setup
from tests.conftest import tiny_config


def test_inference_restores_the_saved_params_without_building_an_optimizer(tokens_workdir, tmp_path, monkeypatch):
  config = tiny_config(tokens_workdir)
  state = build_train_setup(config).init()
  state = state.replace(step=state.step + 4, params=jax.tree.map(lambda p: p * 2 + 0.5, state.params))
  manager = checkpoint.make_manager(str(tmp_path / "checkpoints"), keep=2)
  checkpoint.save(manager, 4, state, {"position": 1})
  manager.wait_until_finished()

  def refuse(*args, **kwargs):
    pytest.fail("loading for inference built an optimizer or schedule")
  monkeypatch.setattr(optim, "make_optimizer", refuse)
  monkeypatch.setattr(optim, "lr_schedule", refuse)
  loaded = load_model(config, str(tmp_path))
  assert loaded.step == 4
  assert jax.tree.structure(loaded.params) == jax.tree.structure(state.params)
  for got, saved in zip(jax.tree.leaves(loaded.params), jax.tree.leaves(state.params)):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(saved))
    assert got.sharding == saved.sharding
