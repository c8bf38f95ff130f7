"""Token shards: documents → [BOS] + ids + [EOS] → ArrayRecord files split into train and validation.

Each record is one document's ids as little-endian int32 bytes. ArrayRecord reads and writes local files
only, so the tokens folder is local (or a file:// URL); a remote one is an error naming data.tokens_dir.
"""
import bisect
import dataclasses
import json
import multiprocessing
import os

import grain
import numpy as np
from array_record.python.array_record_module import ArrayRecordWriter
from tqdm import tqdm

from lmjax import fs
from lmjax.config import UserError
from lmjax.data.documents import is_validation, read_documents
from lmjax.data.tokenizer import Tokenizer
from lmjax.data.workers import die_with_parent

SPLITS = ("train", "val")
LOCAL_ONLY = "ArrayRecord token shards are written and read as local files"


def encode_record(ids: list[int]) -> bytes:
  return np.asarray(ids, dtype="<i4").tobytes()


def decode_record(record: bytes) -> np.ndarray:
  return np.frombuffer(record, dtype="<i4")


def shard_paths(tokens_dir: str, split: str) -> list[str]:
  """The ArrayRecord files of one split, sorted; an error naming the folder if there are none."""
  folder = os.path.join(fs.local(tokens_dir, "config.data.tokens_dir", LOCAL_ONLY), split)
  paths = sorted(os.path.join(folder, f) for f in os.listdir(folder)) if os.path.isdir(folder) else []
  paths = [p for p in paths if p.endswith(".array_record")]
  if not paths:
    raise FileNotFoundError(f"no token shards in {folder}; run `lmjax tokenize` first (or set data.tokens_dir)")
  return paths


REBUILD = "delete the tokens folder and rerun `lmjax tokenize`"


class ShardSource:
  """The records of a split's shards in order, as one grain source; a shard that cannot be read (truncated,
  corrupted) is an error naming it, at open or at the record that fails."""

  def __init__(self, paths: list[str]):
    self.paths, self.sources = paths, [_open_shard(path) for path in paths]
    self.starts = np.cumsum([0, *map(len, self.sources)]).tolist()

  def __len__(self) -> int:
    return self.starts[-1]

  def __getitem__(self, index: int) -> bytes:
    shard = bisect.bisect_right(self.starts, index) - 1
    try:
      return self.sources[shard][index - self.starts[shard]]
    except RuntimeError as e:
      raise UserError(f"token shard {self.paths[shard]} is corrupted at record {index - self.starts[shard]} "
                      f"({e}); {REBUILD}") from None


def _open_shard(path: str):
  try:
    return grain.sources.ArrayRecordDataSource([path])
  except RuntimeError as e:
    raise UserError(f"token shard {path} cannot be read, truncated or corrupted ({e or 'no readable index'}); "
                    f"{REBUILD}") from None


def open_shards(tokens_dir: str, split: str, *, required: bool = False) -> ShardSource:
  """Every record of one split; with `required`, an error naming the folder if it holds none."""
  source = ShardSource(shard_paths(tokens_dir, split))
  if required and not len(source):
    raise UserError(f"the {split} token shards in {os.path.dirname(source.paths[0])} hold no documents; "
                    "point config.data.documents at a corpus with text and rerun `lmjax tokenize`")
  return source


_worker_tokenizer: Tokenizer | None = None


def _init_worker(parent_pid: int, tokenizer_path: str):
  global _worker_tokenizer  # one tokenizer per worker process, loaded once
  die_with_parent(parent_pid)
  _worker_tokenizer = Tokenizer(tokenizer_path)


def _encode_chunk(docs: list[dict]) -> list[tuple[str, int, list[int]]]:
  """(id, utf-8 bytes, [BOS] + ids + [EOS]) for each document of a chunk."""
  tok = _worker_tokenizer
  ids = tok.encode([d["text"] for d in docs])
  return [(d["id"], len(d["text"].encode()), [tok.bos_id, *x, tok.eos_id]) for d, x in zip(docs, ids)]


def _chunks(docs, size: int):
  chunk = []
  for doc in docs:
    chunk.append(doc)
    if len(chunk) == size:
      yield chunk
      chunk = []
  if chunk:
    yield chunk


@dataclasses.dataclass
class SplitStats:
  documents: int = 0
  tokens: int = 0
  bytes: int = 0

  @property
  def bytes_per_token(self) -> float:
    return self.bytes / max(self.tokens - 2 * self.documents, 1)  # BOS/EOS carry no text


def write_token_shards(docs, tokenizer_path: str, tokens_dir: str, *, num_shards: int, val_fraction: float,
                       workers: int, chunk_size: int = 256) -> dict[str, SplitStats]:
  """Tokenizes `docs` in worker processes and writes tokens_dir/{train,val}/NNNNN.array_record.

  Output order is input order (documents go round-robin over shards), so the result is deterministic
  for any number of workers. Files are written under a temporary name and renamed when complete.
  """
  tokens_dir = fs.local(tokens_dir, "config.data.tokens_dir", LOCAL_ONLY)
  writers, stats, counters = {}, {s: SplitStats() for s in SPLITS}, {s: 0 for s in SPLITS}
  for split in SPLITS:
    os.makedirs(os.path.join(tokens_dir, split), exist_ok=True)
    writers[split] = [ArrayRecordWriter(os.path.join(tokens_dir, split, f"{i:05d}.array_record.tmp"),
                                        "group_size:1") for i in range(num_shards)]
  workers = workers or os.cpu_count()
  with multiprocessing.get_context("spawn").Pool(workers, _init_worker, (os.getpid(), tokenizer_path)) as pool:
    for encoded in tqdm(pool.imap(_encode_chunk, _chunks(docs, chunk_size)), desc="tokenize", unit="chunk"):
      for doc_id, num_bytes, ids in encoded:
        split = "val" if is_validation(doc_id, val_fraction) else "train"
        writers[split][counters[split] % num_shards].write(encode_record(ids))
        counters[split] += 1
        s = stats[split]
        s.documents, s.tokens, s.bytes = s.documents + 1, s.tokens + len(ids), s.bytes + num_bytes
  empty = not stats["train"].documents  # nothing to train on: keep no shards, so pretraining cannot start
  for split in SPLITS:
    for i, writer in enumerate(writers[split]):
      writer.close()
      path = os.path.join(tokens_dir, split, f"{i:05d}.array_record")
      os.remove(path + ".tmp") if empty else os.replace(path + ".tmp", path)
  if empty:
    raise UserError(f"no documents to tokenize for the train split ({stats['val'].documents} went to val): the "
                    "files config.data.documents matches hold no text; point it at a corpus")
  with open(os.path.join(tokens_dir, "summary.json"), "w") as f:
    json.dump({s: dataclasses.asdict(v) | {"bytes_per_token": v.bytes_per_token} for s, v in stats.items()},
              f, indent=2)
  return stats


def run(config, workdir: str) -> dict:
  """`lmjax tokenize`: config.data.documents → WORKDIR/tokens/{train,val}, printing a summary table."""
  tokenizer_file = config.data.tokenizer or os.path.join(workdir, "tokenizer.model")
  if not fs.exists(tokenizer_file):
    raise FileNotFoundError(f"no tokenizer at {tokenizer_file}; run `lmjax tokenizer` first")
  out = config.data.tokens_dir or os.path.join(workdir, "tokens")
  stats = write_token_shards(read_documents(config.data.documents, config.data.text_field), tokenizer_file,
                             out, num_shards=config.data.num_shards, val_fraction=config.data.val_fraction,
                             workers=config.data.workers)
  print(f"{'split':<6}{'documents':>11}{'tokens':>12}{'MB':>8}{'bytes/token':>13}")
  for split, s in stats.items():
    print(f"{split:<6}{s.documents:>11,}{s.tokens:>12,}{s.bytes / 1e6:>8.2f}{s.bytes_per_token:>13.2f}")
  return {split: dataclasses.asdict(s) for split, s in stats.items()}
