"""The optimizer from config: AdamW's and SGD's updates, weight decay on matrices only, clipping, bad names."""
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from lmjax import optim


def optim_config(**fields):
  config = ml_collections.ConfigDict(dict(name="adamw", lr=0.1, b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.0,
                                          clip_norm=0.0))
  config.update(fields)
  return config


PARAMS = {"matrix": jnp.ones((2, 3)), "scale": jnp.ones((3,))}
GRADS = {"matrix": jnp.array([[1e-3, -2.0, 0.5], [0.0, 4.0, -1e-4]]), "scale": jnp.array([0.3, -0.3, 1e-5])}


def one_update(config):
  optimizer = optim.make_optimizer(config, optax.constant_schedule(config.lr))
  updates, _ = optimizer.update(GRADS, optimizer.init(PARAMS), PARAMS)
  return updates


def test_sgd_step_is_the_gradient_times_lr_plus_decay_on_matrices_only():
  updates = one_update(optim_config(name="sgd", weight_decay=0.5))
  np.testing.assert_allclose(updates["matrix"], -0.1 * (GRADS["matrix"] + 0.5 * PARAMS["matrix"]), rtol=1e-6)
  np.testing.assert_allclose(updates["scale"], -0.1 * GRADS["scale"], rtol=1e-6)


def test_adamw_first_step_moves_every_weight_by_lr_whatever_its_gradient():
  """Why RL uses SGD here: Adam's first step is lr·sign(g), so a weight with a 1e-5 gradient moves as far as
  one with a gradient of 4."""
  updates = one_update(optim_config(name="adamw"))
  moved = np.abs(np.concatenate([np.ravel(updates["matrix"]), np.ravel(updates["scale"])]))
  np.testing.assert_allclose(moved[moved > 0], 0.1, rtol=1e-2)


def test_clipping_bounds_the_sgd_step():
  updates = one_update(optim_config(name="sgd", clip_norm=1.0))
  norm = np.sqrt(sum(float(jnp.sum(u ** 2)) for u in updates.values()))
  np.testing.assert_allclose(norm, 0.1, rtol=1e-5)


def test_unknown_optimizer_names_the_field():
  with pytest.raises(ValueError, match=r"optim\.name='lion'.*adamw, sgd"):
    one_update(optim_config(name="lion"))
