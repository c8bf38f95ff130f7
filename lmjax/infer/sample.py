"""`lmjax sample`: a continuation of a prompt from the latest checkpoint, by recomputing the prefix.

    lmjax sample --workdir runs/quickstart --prompt "The meaning of life"

The whole sequence lives in one fixed-size buffer, so the jitted step compiles once for every length.
(The KV-cache engine is a separate, later piece; this is the simple reference it must agree with.)
"""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lmjax.data.tokenizer import Tokenizer
from lmjax.train import checkpoint
from lmjax.train.setup import build_train_setup, tokenizer_path


def sample_logits(logits_v: jax.Array, key: jax.Array, temperature: float, top_k: int) -> jax.Array:
  """One token id from logits: greedy at temperature 0, else softmax(logits / T) over the top k."""
  if temperature == 0:
    return jnp.argmax(logits_v, axis=-1)
  if top_k:
    kth_largest = jax.lax.top_k(logits_v, top_k)[0][..., -1:]
    logits_v = jnp.where(logits_v < kth_largest, -jnp.inf, logits_v)
  return jax.random.categorical(key, logits_v / temperature, axis=-1)


def generate(graphdef, params, prompt_ids: list[int], *, max_new_tokens: int, temperature: float, top_k: int,
             seed: int, stop_ids: tuple[int, ...] = ()) -> list[int]:
  """The prompt's continuation (new ids only), stopping after a stop id or max_new_tokens."""
  length = len(prompt_ids) + max_new_tokens
  tokens = np.zeros((1, length), np.int32)
  tokens[0, : len(prompt_ids)] = prompt_ids
  positions = jnp.arange(length, dtype=jnp.int32)[None]
  segments = jnp.ones((1, length), jnp.int32)

  @jax.jit
  def next_id(params, tokens, cursor, key):
    logits_btv = nnx.merge(graphdef, params)(tokens, positions, segments)
    return sample_logits(logits_btv[0, cursor - 1], key, temperature, top_k)

  key, new_ids = jax.random.key(seed), []
  for cursor in range(len(prompt_ids), length):
    token = int(next_id(params, tokens, cursor, jax.random.fold_in(key, cursor)))
    tokens[0, cursor] = token
    new_ids.append(token)
    if token in stop_ids:
      break
  return new_ids


def run(config, workdir: str, prompt: str) -> str:
  """Restores the latest checkpoint in WORKDIR and prints the prompt's continuation."""
  setup = build_train_setup(config, tokenizer_path(config, workdir))
  tok = Tokenizer(tokenizer_path(config, workdir))
  manager = checkpoint.make_manager(f"{workdir}/checkpoints", keep=config.checkpoint.keep)
  if manager.latest_step() is None:
    raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints; run `lmjax pretrain` first")
  state, _ = checkpoint.restore(manager, manager.latest_step(), setup.abstract_state, setup.shardings)
  s = config.sample
  new_ids = generate(setup.graphdef, state.params, [tok.bos_id, *tok.encode(prompt)],
                     max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_k=s.top_k, seed=s.seed,
                     stop_ids=(tok.eos_id,))
  text = prompt + tok.decode(new_ids)
  print(text)
  return text
