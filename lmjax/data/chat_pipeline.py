"""The SFT input pipeline (grain): conversations → chat-protocol ids and assistant mask → packed rows.

Whole conversations are packed first-fit into rows (a conversation longer than a row is truncated, never
split), each with its own segment id and positions, so neither attention nor loss crosses conversations.
The loss mask is the protocol's: 1 only on the tokens the assistant must produce.
"""
import grain
import numpy as np
from grain.experimental import FirstFitPackIterDataset

from lmjax import chat
from lmjax.data.documents import read_jsonl
from lmjax.data.pipeline import epochs
from lmjax.data.streams import RowStreams


def read_conversations(pattern: str) -> list[list[dict]]:
  """Conversations from JSONL files: one per line, as {"messages": [...]} or a bare list; each validated."""
  def conversation(record, where):
    messages = record["messages"] if isinstance(record, dict) else record
    chat.validate(messages)
    return messages
  return list(read_jsonl(pattern, conversation, "a valid conversation"))


def render_examples(conversations: list[list[dict]], tokenizer, seq_len: int) -> list[dict]:
  """Each conversation as (tokens, targets, loss_mask) arrays shifted by one and cut to seq_len."""
  examples = []
  for messages in conversations:
    ids, mask = chat.render(messages, tokenizer)
    ids, mask = np.asarray(ids, np.int32), np.asarray(mask, np.float32)
    examples.append({"tokens": ids[:-1][:seq_len], "targets": ids[1:][:seq_len], "loss_mask": mask[1:][:seq_len]})
  return examples


def _to_batch(packed: dict) -> dict:
  return {"tokens": packed["tokens"], "targets": packed["targets"], "loss_mask": packed["loss_mask"],
          "positions": packed["tokens_positions"].astype(np.int32),
          "segment_ids": packed["tokens_segment_ids"].astype(np.int32)}


def make_chat_dataset(examples: list[dict], *, seq_len: int, batch_size: int, seed: int,
                      rows: tuple[int, int] | None = None, streams: int = 1, shuffle: bool = True,
                      repeat: bool = True) -> RowStreams:
  """This process's rows [start, stop) (default: all) of batches [batch_size, seq_len] of packed
  conversations, drawn from `streams` packing streams (see `lmjax.data.streams`)."""
  if not examples:
    raise ValueError("no conversations to train on; check the SFT data sources in the config")

  def make_stream(stream: int, count: int, rows_per_batch: int) -> grain.IterDataset:
    ds = epochs(examples, seed=seed, shuffle=shuffle, repeat=repeat, stream=stream, streams=count)
    length = {"tokens": seq_len, "targets": seq_len, "loss_mask": seq_len}
    packed = FirstFitPackIterDataset(ds.to_iter_dataset(), length_struct=length,
                                     num_packing_bins=rows_per_batch, seed=seed, shuffle_bins=shuffle)
    return packed.batch(rows_per_batch, drop_remainder=repeat).map(_to_batch).map(
        lambda b: _pad_rows(b, rows_per_batch))

  return RowStreams(make_stream, count=streams, batch_size=batch_size, rows=rows or (0, batch_size))


def _pad_rows(batch: dict, rows: int) -> dict:
  """Fills a short final batch with empty rows (segment 0, no loss), so it shards like the others."""
  missing = rows - len(batch["tokens"])
  return {k: np.pad(v, [(0, missing)] + [(0, 0)] * (v.ndim - 1)) for k, v in batch.items()}
