"""Batched sampling with a KV cache: prefill the prompts in one pass, then one token per step inside a
single jitted `lax.while_loop` (no Python per token).

Prompts of different lengths share a batch through per-row positions: row b's prompt fills cache slots
0..len_b-1 and its new tokens continue from slot len_b, so padding never enters attention. Greedy decoding
gives the same tokens as recomputing the whole prefix each step (`generate_recompute`, the reference).
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

PROMPT_BUCKET = 32  # prompts are padded to a multiple of this, so lengths share compilations


@dataclasses.dataclass(frozen=True)
class SamplingParams:
  max_new_tokens: int = 64
  temperature: float = 0.0  # 0 = greedy
  top_k: int = 0  # keep the k most likely tokens (0 = all)
  top_p: float = 1.0  # keep the smallest set of tokens whose probability reaches p (1 = all)
  seed: int = 0
  stop_ids: tuple[int, ...] = ()  # a row stops after emitting any of these (it is kept in the output)


def filter_logits(logits_bv: jax.Array, top_k, top_p) -> jax.Array:
  """Logits with everything outside the top-k (k=0: no limit) and the top-p nucleus set to -inf.

  k and p may be traced, so changing them does not recompile the decode loop.
  """
  vocab = logits_bv.shape[-1]
  sorted_bv = jnp.sort(logits_bv, axis=-1)[:, ::-1]
  kth_b1 = sorted_bv[:, jnp.clip(top_k - 1, 0, vocab - 1)][:, None]
  logits_bv = jnp.where((top_k > 0) & (logits_bv < kth_b1), -jnp.inf, logits_bv)
  probs_bv = jax.nn.softmax(jnp.where((top_k > 0) & (sorted_bv < kth_b1), -jnp.inf, sorted_bv), axis=-1)
  # A token is inside the nucleus when the mass of the tokens before it is still below top_p.
  inside_bv = (jnp.cumsum(probs_bv, axis=-1) - probs_bv) < top_p
  threshold_b1 = jnp.min(jnp.where(inside_bv, sorted_bv, jnp.inf), axis=-1, keepdims=True)
  return jnp.where(logits_bv < threshold_b1, -jnp.inf, logits_bv)


def sample_next(logits_bv: jax.Array, key: jax.Array, temperature, top_k, top_p) -> jax.Array:
  """One token id per row: argmax at temperature 0, else a draw from softmax(filtered logits / T).

  `lax.cond` runs only the branch taken: greedy decoding never pays for the sort that top-k/top-p need,
  and neither does plain sampling.
  """
  def draw(logits_bv):
    needs_filter = (top_k > 0) | (top_p < 1.0)
    logits_bv = jax.lax.cond(needs_filter, lambda x: filter_logits(x, top_k, top_p), lambda x: x, logits_bv)
    return jax.random.categorical(key, logits_bv / temperature, axis=-1).astype(jnp.int32)

  greedy = lambda logits_bv: jnp.argmax(logits_bv, axis=-1).astype(jnp.int32)
  return jax.lax.cond(temperature == 0, greedy, draw, logits_bv)


MAX_STOP_IDS = 8


@functools.partial(jax.jit, static_argnames=("graphdef", "max_new_tokens"))
def _generate(graphdef, params, tokens_bp, lengths_b, knobs: dict, max_new_tokens: int):
  """New tokens [b, max_new_tokens] (0 after a row stops) and the number of decode steps run.

  `knobs` (temperature, top_k, top_p, seed, stop_ids) are traced: one compilation serves them all.
  """
  model = nnx.merge(graphdef, params)
  batch, prompt_len = tokens_bp.shape
  cache = model.init_cache(batch, prompt_len + max_new_tokens)
  positions_bp = jnp.broadcast_to(jnp.arange(prompt_len, dtype=jnp.int32), (batch, prompt_len))
  logits_b1v, cache = model.decode(tokens_bp, positions_bp, cache, logits_at_b=lengths_b - 1)
  last_bv = logits_b1v[:, 0]
  key = jax.random.key(knobs["seed"])

  def not_finished(carry):
    step, _, _, _, _, done_b = carry
    return (step < max_new_tokens) & ~jnp.all(done_b)

  def decode_one(carry):
    step, cursor_b, last_bv, cache, out_bn, done_b = carry
    token_b = sample_next(last_bv, jax.random.fold_in(key, step), knobs["temperature"], knobs["top_k"],
                          knobs["top_p"])
    token_b = jnp.where(done_b, 0, token_b)
    out_bn = out_bn.at[:, step].set(token_b)
    done_b = done_b | jnp.isin(token_b, knobs["stop_ids"])
    logits_b1v, cache = model.decode(token_b[:, None], cursor_b[:, None], cache)
    return step + 1, cursor_b + 1, logits_b1v[:, 0], cache, out_bn, done_b

  out_bn = jnp.zeros((batch, max_new_tokens), jnp.int32)
  carry = (jnp.int32(0), lengths_b.astype(jnp.int32), last_bv, cache, out_bn, jnp.zeros((batch,), bool))
  steps, _, _, _, out_bn, _ = jax.lax.while_loop(not_finished, decode_one, carry)
  return out_bn, steps


def _knobs(sampling: SamplingParams) -> dict:
  if len(sampling.stop_ids) > MAX_STOP_IDS:
    raise ValueError(f"at most {MAX_STOP_IDS} stop ids; got {len(sampling.stop_ids)}")
  stop_ids = np.full(MAX_STOP_IDS, -1, np.int32)
  stop_ids[: len(sampling.stop_ids)] = sampling.stop_ids
  return {"temperature": np.float32(sampling.temperature), "top_k": np.int32(sampling.top_k),
          "top_p": np.float32(sampling.top_p), "seed": np.uint32(sampling.seed), "stop_ids": stop_ids}


def pad_prompts(prompts: list[list[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Right-padded [b, P] ids (P rounded up to PROMPT_BUCKET) and the lengths."""
  if not prompts or any(len(p) == 0 for p in prompts):
    raise ValueError("every prompt needs at least one token (e.g. BOS)")
  width = -(-max(map(len, prompts)) // PROMPT_BUCKET) * PROMPT_BUCKET
  tokens = np.full((len(prompts), width), pad_id, np.int32)
  for row, prompt in enumerate(prompts):
    tokens[row, : len(prompt)] = prompt
  return tokens, np.array([len(p) for p in prompts], np.int32)


def _cut_after_stop(ids: list[int], stop_ids: tuple[int, ...]) -> list[int]:
  for i, token in enumerate(ids):
    if token in stop_ids:
      return ids[: i + 1]
  return ids


def generate(graphdef, params, prompts: list[list[int]], sampling: SamplingParams) -> list[list[int]]:
  """Each prompt's new tokens, up to and including a stop id, at most `sampling.max_new_tokens`."""
  tokens, lengths = pad_prompts(prompts)
  out, _ = _generate(graphdef, params, tokens, lengths, _knobs(sampling), sampling.max_new_tokens)
  return [_cut_after_stop(row, sampling.stop_ids) for row in np.asarray(out).tolist()]


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _recompute_next(graphdef, params, tokens_bt, cursor_b, key, knobs):
  positions_bt = jnp.broadcast_to(jnp.arange(tokens_bt.shape[1], dtype=jnp.int32), tokens_bt.shape)
  logits_btv = nnx.merge(graphdef, params)(tokens_bt, positions_bt, jnp.ones_like(tokens_bt))
  last_bv = logits_btv[jnp.arange(tokens_bt.shape[0]), cursor_b - 1]
  return sample_next(last_bv, key, knobs["temperature"], knobs["top_k"], knobs["top_p"])


def generate_recompute(graphdef, params, prompts: list[list[int]], sampling: SamplingParams) -> list[list[int]]:
  """The reference: every step recomputes each row's whole prefix (in a fixed-size buffer, one compile)."""
  tokens, cursor = pad_prompts(prompts)
  tokens = np.pad(tokens, ((0, 0), (0, sampling.max_new_tokens)))
  knobs = _knobs(sampling)
  key, done, out = jax.random.key(knobs["seed"]), np.zeros(len(prompts), bool), []
  for step in range(sampling.max_new_tokens):
    new = np.asarray(_recompute_next(graphdef, params, tokens, cursor, jax.random.fold_in(key, step), knobs))
    new = np.where(done, 0, new)
    tokens[np.arange(len(prompts)), cursor] = new
    cursor, done = cursor + 1, done | np.isin(new, sampling.stop_ids)
    out.append(new)
    if done.all():
      break
  return [_cut_after_stop(row, sampling.stop_ids) for row in np.stack(out, 1).tolist()]
