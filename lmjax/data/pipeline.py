"""The pretraining input pipeline (grain): token shards → shuffled documents → packed rows → batches.

Each row holds whole or split documents back to back; `segment_ids` (1, 2, ... per document, 0 for
padding) keep attention and targets inside a document, and `positions` restart at 0 in each. The
iterator's state (a small JSON-able dict) is saved with every checkpoint, so resuming continues with
exactly the next batch.
"""
import grain
import numpy as np
from grain.experimental import ConcatThenSplitIterDataset, ThreadPrefetchIterDataset

from lmjax.data.shards import decode_record, open_shards
from lmjax.data.streams import RowStreams


def _next_token_pair(record: bytes) -> dict:
  """A document's ids as (tokens, targets) shifted by one, so no target crosses a document boundary."""
  ids = decode_record(record)
  return {"tokens": ids[:-1], "targets": ids[1:]}


def _to_batch(packed: dict) -> dict:
  """grain's packed features → the train step's batch keys."""
  segment_ids = packed["tokens_segment_ids"].astype(np.int32)
  return {"tokens": packed["tokens"].astype(np.int32), "targets": packed["targets"].astype(np.int32),
          "positions": packed["tokens_positions"].astype(np.int32), "segment_ids": segment_ids,
          "loss_mask": (segment_ids > 0).astype(np.float32)}


def epochs(source, *, seed: int, shuffle: bool, repeat: bool, stream: int = 0,
           streams: int = 1) -> grain.MapDataset:
  """Stream `stream` of `streams` over `source`: every streams-th record of one global order, reshuffled
  every epoch from `seed`, endless if `repeat`.

  Shuffling happens before splitting by index, so the streams read disjoint records of one global order.
  """
  ds = grain.MapDataset.source(source)
  if shuffle:
    ds = ds.shuffle(seed=seed)
  if repeat:
    ds = ds.repeat()
  return ds[stream::streams]


def make_pretrain_dataset(tokens_dir: str, split: str, *, seq_len: int, batch_size: int, seed: int,
                          rows: tuple[int, int] | None = None, streams: int = 1, shuffle: bool = True,
                          repeat: bool = True, prefetch: int = 2) -> RowStreams:
  """This process's rows [start, stop) (default: all) of global batches [batch_size, seq_len] of packed
  documents, drawn from `streams` packing streams (see `lmjax.data.streams`).

  Documents are shuffled globally (a fresh order each epoch, from `seed`), then dealt to the streams by
  index; each stream packs its documents into rows on its own.
  """
  def make_stream(stream: int, count: int, rows_per_batch: int) -> grain.IterDataset:
    # each stream its own readers; a bad shard is an error naming it, and so is an endless stream of nothing
    source = open_shards(tokens_dir, split, required=repeat)
    docs = epochs(source, seed=seed, shuffle=shuffle, repeat=repeat, stream=stream,
                  streams=count).map(_next_token_pair)
    packed = ConcatThenSplitIterDataset(docs.to_iter_dataset(),
                                        length_struct={"tokens": seq_len, "targets": seq_len})
    batches = packed.batch(rows_per_batch, drop_remainder=True).map(_to_batch)
    return ThreadPrefetchIterDataset(batches, prefetch_buffer_size=prefetch) if prefetch else batches

  return RowStreams(make_stream, count=streams, batch_size=batch_size, rows=rows or (0, batch_size))
