"""The model as a pure function of a config and parameters: `init_params(config, seed)` and
`logits(config, params, tokens)`.

For code that holds parameters rather than a module (an imported HuggingFace checkpoint, a restored run):
the transformer is rebuilt from `config.model` as shapes only, then merged with the given parameters.
"""
import functools

import jax
import jax.numpy as jnp
from flax import nnx

from lmjax.model.transformer import ModelConfig, Transformer


def model_definition(config) -> tuple[nnx.GraphDef, nnx.State]:
  """(graphdef, abstract params) of config.model's Transformer: shapes, dtypes and logical axes, no arrays."""
  model_config = ModelConfig.from_config(config.model)
  return nnx.split(nnx.eval_shape(lambda: Transformer(model_config, rngs=nnx.Rngs(0))))


def init_params(config, seed: int) -> nnx.State:
  """The parameters pretraining starts from with train.seed = `seed`: the same initialisers and RNG stream,
  jitted as the train state's init is (eager normals can differ from jitted ones in the last bit)."""
  model_config = ModelConfig.from_config(config.model)
  return jax.jit(lambda: nnx.state(Transformer(model_config, rngs=nnx.Rngs(params=seed)), nnx.Param))()


def as_state(config, params) -> nnx.State:
  """`params` as the Transformer's nnx.State; a pure dict (`nnx.to_pure_dict`) is accepted too."""
  if isinstance(params, nnx.State):
    return params
  _, abstract = model_definition(config)
  nnx.replace_by_pure_dict(abstract, params)
  return abstract


def logits(config, params, tokens_bt) -> jax.Array:
  """Next-token logits [b, t, v] (float32) of int tokens [b, t], each row one sequence from position 0."""
  graphdef, _ = model_definition(config)
  return _logits(graphdef, as_state(config, params), jnp.asarray(tokens_bt, jnp.int32))


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _logits(graphdef, params, tokens_bt):
  positions_bt = jnp.broadcast_to(jnp.arange(tokens_bt.shape[1], dtype=jnp.int32), tokens_bt.shape)
  return nnx.merge(graphdef, params)(tokens_bt, positions_bt, jnp.ones_like(tokens_bt))
