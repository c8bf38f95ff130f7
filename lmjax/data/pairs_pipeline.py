"""Preference pairs for the reward model and the preference losses: each row holds one pair, chosen then
rejected, as two segments.

A pair is {"prompt": messages | str, "chosen": message | str, "rejected": message | str}; both responses
are rendered after the same prompt by the chat protocol (`pair_row`). The reward model scores each at its
last token (and, with rm.logprob_weight, its mean token log-prob); DPO and its kin sum each reply's token
log-probs over the replies' masks.
"""
import collections
import json

import grain
import numpy as np

from lmjax import chat
from lmjax.config import ConfigError
from lmjax.data.documents import is_validation, read_jsonl
from lmjax.data.pipeline import epochs
from lmjax.data.posttrain import math_problems, preferences
from lmjax.data.streams import RowStreams


def as_messages(prompt) -> list[dict]:
  return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def as_reply(response) -> dict:
  return {"role": "assistant", "content": response} if isinstance(response, str) else response


def read_pairs(pattern: str) -> list[dict]:
  """Pairs from JSONL files, each validated as two conversations; errors name the file and line."""
  def pair(record, where):
    for side in ("chosen", "rejected"):
      chat.validate(as_messages(record["prompt"]) + [as_reply(record[side])])
    return record
  return list(read_jsonl(pattern, pair, "a prompt/chosen/rejected pair"))


def preference_pairs(section, name: str) -> list[dict]:
  """The pairs of config.<name>.pairs (JSONL files) followed by those built from its math_problems generated
  problems (`section` is config.rm or config.dpo: pairs, math_problems, math_levels, math_seed)."""
  if not section.pairs and not section.math_problems:
    raise ConfigError(f"no preference pairs: set config.{name}.pairs to a glob of JSONL pairs or "
                      f"config.{name}.math_problems > 0")
  pairs = read_pairs(section.pairs) if section.pairs else []
  problems = math_problems.generate_problems(section.math_problems, section.math_levels,
                                             seed=section.math_seed)
  return pairs + preferences.math_preference_pairs(problems, seed=section.math_seed)


def split_pairs(pairs, tokenizer, seq_len: int, val_fraction: float) -> tuple[list, dict, int]:
  """(training rows, held-out rows by pair kind, pairs skipped as longer than seq_len), each a `pair_row`;
  a pair is held out by a hash of its content, so the split does not depend on the order or the other
  pairs."""
  train_rows, held_out, skipped = [], collections.defaultdict(list), 0
  for pair in pairs:
    row = pair_row(pair, tokenizer, seq_len)
    skipped += row is None
    if row is not None and is_validation(json.dumps(pair, sort_keys=True), val_fraction):
      held_out[pair.get("kind", "file")].append(row)
    elif row is not None:
      train_rows.append(row)
  return train_rows, dict(held_out), skipped


def _rendered_sides(pair: dict, tokenizer) -> list[tuple[list[int], list[int]]]:
  """(ids, reply mask) of the chosen and the rejected conversation; the mask is the protocol's loss mask on
  the final reply only (an earlier assistant turn of a multi-turn prompt is part of the prompt)."""
  prompt = as_messages(pair["prompt"])
  prompt_length = len(chat.render(prompt, tokenizer)[0])
  sides = []
  for side in ("chosen", "rejected"):
    ids, mask = chat.render(prompt + [as_reply(pair[side])], tokenizer)
    sides.append((ids, [0] * prompt_length + mask[prompt_length:]))
  return sides


def pair_row(pair: dict, tokenizer, seq_len: int) -> dict | None:
  """A pair's row [seq_len]: chosen conversation (segment 1), rejected (segment 2), padding; `targets` (each
  segment's next token); `chosen_mask` / `rejected_mask`, 1 where the target is a token of that final reply
  (its text, tool calls and end marker; never the prompt, a tool output or padding); and each response's last
  position `chosen_index` / `rejected_index`. None if the two do not fit (never truncated)."""
  sides = _rendered_sides(pair, tokenizer)
  if sum(len(ids) for ids, _ in sides) > seq_len:
    return None
  row = {k: np.zeros(seq_len, np.int32) for k in ("tokens", "positions", "segment_ids", "targets")}
  row |= {k: np.zeros(seq_len, np.float32) for k in ("chosen_mask", "rejected_mask")}
  start, ends = 0, []
  for segment, ((ids, mask), side) in enumerate(zip(sides, ("chosen", "rejected")), 1):
    stop = start + len(ids)
    row["tokens"][start:stop] = ids
    row["positions"][start:stop] = np.arange(len(ids))
    row["segment_ids"][start:stop] = segment
    row["targets"][start:stop - 1] = ids[1:]  # the segment's next token; its last token predicts nothing
    row[f"{side}_mask"][start:stop - 1] = mask[1:]
    start = stop
    ends.append(stop - 1)
  row["chosen_index"], row["rejected_index"] = np.int32(ends[0]), np.int32(ends[1])
  return row


def make_pairs_dataset(rows: list[dict], *, batch_size: int, seed: int,
                       process_rows: tuple[int, int] | None = None, streams: int = 1, shuffle: bool = True,
                       repeat: bool = True) -> RowStreams:
  """This process's rows [start, stop) (default: all) of batches of pair rows, from `streams` streams."""
  if not rows:
    raise ValueError("no preference pairs fit in train.seq_len; raise it or check the pairs")

  def make_stream(stream: int, count: int, rows_per_batch: int) -> grain.IterDataset:
    ds = epochs(rows, seed=seed, shuffle=shuffle, repeat=repeat, stream=stream, streams=count)
    return ds.batch(rows_per_batch, drop_remainder=True).to_iter_dataset()

  return RowStreams(make_stream, count=streams, batch_size=batch_size,
                    rows=process_rows or (0, batch_size))
