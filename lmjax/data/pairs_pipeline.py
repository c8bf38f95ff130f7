"""Preference pairs for the reward model: each row holds one pair, chosen then rejected, as two segments.

A pair is {"prompt": messages | str, "chosen": message | str, "rejected": message | str}; both responses
are rendered after the same prompt by the chat protocol, and each is scored at its last token.
"""
import grain
import numpy as np

from lmjax import chat
from lmjax.data.documents import read_jsonl
from lmjax.data.pipeline import epochs
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


def pair_row(pair: dict, tokenizer, seq_len: int) -> dict | None:
  """One row [seq_len]: chosen conversation (segment 1), rejected (segment 2), padding; None if too long."""
  prompt = as_messages(pair["prompt"])
  sides = [chat.render(prompt + [as_reply(pair[s])], tokenizer)[0] for s in ("chosen", "rejected")]
  if sum(map(len, sides)) > seq_len:
    return None
  row = {"tokens": np.zeros(seq_len, np.int32), "positions": np.zeros(seq_len, np.int32),
         "segment_ids": np.zeros(seq_len, np.int32)}
  start, ends = 0, []
  for segment, ids in enumerate(sides, 1):
    row["tokens"][start:start + len(ids)] = ids
    row["positions"][start:start + len(ids)] = np.arange(len(ids))
    row["segment_ids"][start:start + len(ids)] = segment
    start += len(ids)
    ends.append(start - 1)
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
