"""TrainState and its creation directly in its final sharding (never materialised whole on one device)."""
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from flax import nnx, struct
from jax.sharding import Mesh, NamedSharding

from lmjax.sharding import logical_to_spec, replicated


@struct.dataclass
class TrainState:
  """Everything a step changes: the step counter, parameters (an nnx.State) and optimizer state."""
  step: jax.Array
  params: nnx.State
  opt_state: optax.OptState


def _is_variable(x) -> bool:
  return isinstance(x, nnx.Variable)


def state_shardings(abstract_state, mesh: Mesh, rules):
  """Shardings for any tree of nnx Variables: each from its `logical_axes`; plain leaves replicated.

  Optimizer moments are built with tree maps over the parameters, so they keep the parameters'
  Variables and metadata, and are sharded exactly like them.
  """
  def leaf_sharding(x):
    if _is_variable(x) and "logical_axes" in x.get_metadata():
      return x.replace(NamedSharding(mesh, logical_to_spec(x.get_metadata()["logical_axes"], rules)))
    return replicated(mesh)
  return jax.tree.map(leaf_sharding, abstract_state, is_leaf=_is_variable)


def abstract_params(make_model: Callable[[], nnx.Module], mesh: Mesh, rules):
  """(graphdef, abstract_params, shardings) of the model alone, without allocating anything: what loading
  parameters for inference needs, with no optimizer in sight."""
  graphdef, params = nnx.split(nnx.eval_shape(make_model))
  return graphdef, params, state_shardings(params, mesh, rules)


def abstract_train_state(make_params: Callable[[], nnx.State], optimizer: optax.GradientTransformation,
                         mesh: Mesh, rules):
  """(init, abstract_state, shardings) of a state training `make_params()` (the model's parameters, or a LoRA
  run's adapters) without allocating anything: shapes and shardings only."""
  def init() -> TrainState:
    params = make_params()
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))

  abstract_state = jax.eval_shape(init)
  return init, abstract_state, state_shardings(abstract_state, mesh, rules)
