"""The engine's device programs over a fixed set of slots, each slot one row of a shared KV cache.

`prefill` writes one slot's new tokens (a prompt, or a tool's output after what the slot already holds) into
its cache row and keeps the logits after them; `decode` samples tokens for the active slots, one per step
inside one jitted `lax.while_loop`, and returns as soon as any active slot finishes (a stop id or its token
budget) — or, for a static batch, when all have — so the host can give a finished slot new work while the
others keep their caches. Shape letters as in `lmjax/model/layers.py`; s: slots, p: prefill width, n: decode
steps, S: cache length.

A row's randomness is keyed by its own seed and the position it samples at, never by the batch: a reply is
the same whichever slot it runs in and whatever runs beside it.

Compiled programs per engine shape (slots, S): one `decode`, one `init_state`, and one `prefill` and one
`copy_prefix` per width bucket (multiples of BUCKET up to S), so at most 2 · S / BUCKET + 2.
"""
import functools

import jax
import jax.numpy as jnp
from flax import nnx

from lmjax.infer.sampler import row_keys, sample_rows

BUCKET = 32  # prefill widths and cache lengths are multiples of this: a bounded number of compilations


def round_up(n: int, multiple: int = BUCKET) -> int:
  return -(-n // multiple) * multiple


def _slot_axis(cache) -> int:
  """The slot (batch) axis of the cache's arrays: 1 when scanned layers stack them on a leading L axis."""
  return 1 if isinstance(cache, tuple) else 0


@functools.partial(jax.jit, static_argnames=("graphdef", "slots", "length"))
def init_state(graphdef, params, slots: int, length: int):
  """(empty KV cache of `slots` rows × `length` positions, zero logits [s, v]) in the model's layout."""
  model = nnx.merge(graphdef, params)
  return model.init_cache(slots, length), jnp.zeros((slots, model.cfg.vocab_size), jnp.float32)


@functools.partial(jax.jit, static_argnames=("graphdef",), donate_argnames=("cache", "logits_sv"))
def prefill(graphdef, params, cache, logits_sv, slot, tokens_1p, start, length):
  """(cache, logits) with tokens_1p [1, p] written to slot `slot` at positions start .. start + p - 1 and
  the slot's logits those after its first `length` tokens. The padding past `length` lands on positions the
  slot's next tokens overwrite before anything attends to them (a token at position q sees slots 0..q).

  The slot's row is read, and only its p new entries are written back: writing the whole row back made
  XLA:CPU copy the whole cache twice per call (the write aliased the read)."""
  axis, width = _slot_axis(cache), tokens_1p.shape[1]
  row = jax.tree.map(lambda c: jax.lax.dynamic_slice_in_dim(c, slot, 1, axis), cache)
  positions_1p = start + jnp.arange(width, dtype=jnp.int32)[None]
  logits_11v, row = nnx.merge(graphdef, params).decode(tokens_1p, positions_1p, row,
                                                        logits_at_b=jnp.reshape(length - 1, (1,)))

  def write_new_entries(c, r):
    at = [0] * c.ndim
    at[axis], at[axis + 1] = slot, start
    return jax.lax.dynamic_update_slice(c, jax.lax.dynamic_slice_in_dim(r, start, width, axis + 1), at)

  cache = jax.tree.map(write_new_entries, cache, row)
  return cache, logits_sv.at[slot].set(logits_11v[0, 0].astype(jnp.float32))


@functools.partial(jax.jit, static_argnames=("width",), donate_argnames=("cache", "logits_sv"))
def copy_prefix(cache, logits_sv, source, target, logits_v, width: int):
  """(cache, logits) with the target slot's first `width` positions copied from the source slot's and its
  logits set to `logits_v`: a prompt several replies share (RL's group) is prefilled once."""
  axis = _slot_axis(cache)

  def copy(c):
    size, at = list(c.shape), [0] * c.ndim
    size[axis], size[axis + 1], at[axis] = 1, width, source
    block = jax.lax.dynamic_slice(c, at, size)
    at[axis] = target
    return jax.lax.dynamic_update_slice(c, block, at)

  return jax.tree.map(copy, cache), logits_sv.at[target].set(logits_v)


@functools.partial(jax.jit, static_argnames=("graphdef", "steps"), donate_argnames=("cache", "logits_sv"))
def decode(graphdef, params, cache, logits_sv, cursor_s, active_s, budget_s, seeds_s, knobs: dict, steps: int):
  """Up to `steps` tokens for each active slot: a slot finishes when it emits a stop id or its budget'th
  token; the loop ends after the step in which any active slot finishes (all, with knobs["until_all"]).

  Returns (tokens [s, n], -1 where a slot emitted nothing; cache; logits [s, v] after each slot's last token).
  A slot's cursor is the position its next token goes to; each emitted token (stop ids included) is written
  to the cache there. Inactive slots' cursors must stay inside the cache (their writes are never read).
  """
  model = nnx.merge(graphdef, params)

  def running(carry):
    step, finished_s = carry[0], carry[-1]
    done = jnp.where(knobs["until_all"], jnp.all(finished_s | ~active_s), jnp.any(finished_s))
    return (step < steps) & ~done

  def one_token(carry):
    step, cache, logits_sv, cursor_s, count_s, out_sn, finished_s = carry
    token_s = sample_rows(logits_sv, row_keys(seeds_s, cursor_s), knobs)
    emitting_s = active_s & ~finished_s
    out_sn = out_sn.at[:, step].set(jnp.where(emitting_s, token_s, -1))
    count_s = count_s + emitting_s
    finished_s = finished_s | (emitting_s & (jnp.isin(token_s, knobs["stop_ids"]) | (count_s >= budget_s)))
    new_logits_s1v, cache = model.decode(token_s[:, None], cursor_s[:, None], cache)
    logits_sv = jnp.where(emitting_s[:, None], new_logits_s1v[:, 0].astype(jnp.float32), logits_sv)
    return step + 1, cache, logits_sv, cursor_s + emitting_s, count_s, out_sn, finished_s

  slots = cursor_s.shape[0]
  carry = (jnp.int32(0), cache, logits_sv, cursor_s, jnp.zeros((slots,), jnp.int32),
           jnp.full((slots, steps), -1, jnp.int32), jnp.zeros((slots,), bool))
  _, cache, logits_sv, _, _, out_sn, _ = jax.lax.while_loop(running, one_token, carry)
  return out_sn, cache, logits_sv
