"""Step 8, MinHash-LSH near-duplicate removal, as three shard-parallel stages (FineWeb's recipe).

1. signatures (one task per shard): word 5-gram shingles of the normalised text -> 112 min-hashes ->
   14 band keys per document, saved as a (docs, 14) uint64 array.
2. buckets (one task per band): sort all documents' keys for that band; equal keys are candidate
   pairs, saved as edges between global document ids (shard << 32 | index).
3. clusters (one task): union-find over all edges; every cluster keeps its lowest id and the
   others are listed per shard for removal in the final stage.

Index size, the only memory that grows with the corpus (measured, FineWeb's 14 bands, 1M documents):
signatures take 8 B x num_buckets = 112 B per document on disk (~112 MB per million documents), and a
signature task holds its shard's keys in memory (112 B per document of the shard); a bucket task peaks
at ~40 B per document of the whole corpus plus one shard's signature file; the cluster task at ~250 B
per near-duplicate document (the union-find dict); a final task at ~70 B per document removed from its
shard. Everything else streams (tests/data/web/test_web_stage_memory.py).
"""
from __future__ import annotations

import io
import json
import pathlib
import time

import numpy as np
import xxhash

from lmjax.data.web import shards
from lmjax.data.web.text_units import normalize_for_dedup

MERSENNE_PRIME = np.uint64((1 << 61) - 1)
MAX_HASH = np.uint64((1 << 32) - 1)
NO_SHINGLES = np.uint64(0)  # band key of a document too short to shingle: never bucketed


def hash_permutations(num_hashes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """(a, b) of the universal hashes h(x) = (a*x + b) mod p; a < 2^32 so a*x fits in 64 bits."""
  rng = np.random.default_rng(seed)
  a = rng.integers(1, 1 << 32, size=num_hashes, dtype=np.uint64)
  b = rng.integers(0, (1 << 32), size=num_hashes, dtype=np.uint64)
  return a, b


def shingle_hashes(text: str, n_grams: int) -> np.ndarray:
  """32-bit hashes of the distinct word n-grams of the normalised text (all words if fewer than n)."""
  words = normalize_for_dedup(text).split()
  if not words:
    return np.zeros(0, dtype=np.uint64)
  grams = {" ".join(words[i:i + n_grams]) for i in range(max(1, len(words) - n_grams + 1))}
  return np.fromiter((xxhash.xxh32_intdigest(gram.encode()) for gram in grams), dtype=np.uint64, count=len(grams))


def minhash_signature(shingles_s: np.ndarray, a_h: np.ndarray, b_h: np.ndarray) -> np.ndarray:
  """(num_hashes,) minimum over shingles of each permutation."""
  hashed_sh = ((shingles_s[:, None] * a_h[None, :]) % MERSENNE_PRIME + b_h[None, :]) % MERSENNE_PRIME
  return (hashed_sh & MAX_HASH).min(axis=0)


def band_keys(signature_h: np.ndarray, num_buckets: int, hashes_per_bucket: int) -> np.ndarray:
  """(num_buckets,) one 64-bit key per band; equal bands give equal keys (never NO_SHINGLES)."""
  bands_bk = signature_h[:num_buckets * hashes_per_bucket].reshape(num_buckets, hashes_per_bucket)
  keys = np.array([xxhash.xxh64_intdigest(band.tobytes(), seed=bucket) for bucket, band in enumerate(bands_bk)],
                  dtype=np.uint64)
  keys[keys == NO_SHINGLES] = np.uint64(1)
  return keys


def document_band_keys(text: str, cfg, a_h: np.ndarray, b_h: np.ndarray) -> np.ndarray:
  """(num_buckets,) band keys of one document; all NO_SHINGLES when it has no words."""
  shingles_s = shingle_hashes(text, cfg.n_grams)
  if shingles_s.size == 0:
    return np.full(cfg.num_buckets, NO_SHINGLES, dtype=np.uint64)
  return band_keys(minhash_signature(shingles_s, a_h, b_h), cfg.num_buckets, cfg.hashes_per_bucket)


def signatures_task(docs_path: str, output: str, cfg) -> None:
  """Stage 1 for one shard: (docs, num_buckets) uint64 band keys, row i = document i of the shard."""
  started = time.perf_counter()
  a_h, b_h = hash_permutations(cfg.num_buckets * cfg.hashes_per_bucket, cfg.seed)
  rows = (document_band_keys(doc.text, cfg, a_h, b_h) for doc in shards.read_documents(docs_path))
  keys_dk = np.fromiter(rows, dtype=np.dtype((np.uint64, cfg.num_buckets)))  # 112 B/doc, no row objects
  _save_npy(output, keys_dk)
  _save_seconds(output, started)
  shards.mark_done(output)


def buckets_task(bucket: int, signature_paths: list[str], output: str) -> None:
  """Stage 2 for one band: (edges, 2) int64 pairs of global ids whose band keys are equal."""
  started = time.perf_counter()
  keys, ids = [], []
  for shard, path in enumerate(signature_paths):
    keys_d = np.load(path, mmap_mode="r")[:, bucket]
    keys.append(np.array(keys_d))  # a copy: the mapping of the whole file is released
    ids.append((np.int64(shard) << 32) | np.arange(len(keys_d), dtype=np.int64))
  keys_n = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
  ids_n = np.concatenate(ids) if ids else np.zeros(0, np.int64)
  del keys, ids
  usable = keys_n != NO_SHINGLES
  keys_n, ids_n = keys_n[usable], ids_n[usable]
  order = np.argsort(keys_n, kind="stable")  # ids ascend already, so equal keys stay in id order
  keys_n = keys_n[order]
  ids_n = ids_n[order]
  del order, usable
  # link every document to the first (lowest-id) document of its run of equal keys
  run_start_n = np.ones(len(keys_n), dtype=bool)
  run_start_n[1:] = keys_n[1:] != keys_n[:-1]
  del keys_n
  run_head_n = np.where(run_start_n, np.arange(len(ids_n)), 0)
  np.maximum.accumulate(run_head_n, out=run_head_n)
  edges_e2 = np.stack([ids_n[run_head_n[~run_start_n]], ids_n[~run_start_n]], axis=1).astype(np.int64)
  _save_npy(output, edges_e2)
  _save_seconds(output, started)
  shards.mark_done(output)


def clusters_task(edge_paths: list[str], num_shards: int, output_dir: str) -> None:
  """Stage 3: union-find over all edges; writes removed_<shard>.npy (sorted indices to drop) per shard."""
  started = time.perf_counter()
  parent: dict[int, int] = {}

  def find(x: int) -> int:
    root = x
    while parent.get(root, root) != root:
      root = parent[root]
    while parent.get(x, x) != root:
      parent[x], x = root, parent[x]
    return root

  for path in edge_paths:
    for left, right in np.load(path).tolist():
      root_left, root_right = find(left), find(right)
      if root_left != root_right:  # the lower id becomes the root, so it is the one kept
        parent[max(root_left, root_right)] = min(root_left, root_right)
  removed: list[list[int]] = [[] for _ in range(num_shards)]
  for node in parent:
    if find(node) != node:
      removed[node >> 32].append(node & 0xFFFFFFFF)
  for shard, indices in enumerate(removed):
    _save_npy(pathlib.Path(output_dir) / f"removed_{shard:05d}.npy", np.array(sorted(indices), dtype=np.int64))
  _save_seconds(pathlib.Path(output_dir) / "clusters", started)
  shards.mark_done(pathlib.Path(output_dir) / "clusters")


def _save_npy(path: str | pathlib.Path, array: np.ndarray) -> None:
  buffer = io.BytesIO()
  np.save(buffer, array)
  shards.atomic_write_bytes(path, buffer.getvalue())


def _save_seconds(output: str | pathlib.Path, started: float) -> None:
  """<stem>.seconds.json beside the output: the task's time, summed into the minhash step's docs/s."""
  output = pathlib.Path(output)
  shards.atomic_write_json(output.with_name(output.name.split(".")[0] + ".seconds.json"),
                           {"seconds": time.perf_counter() - started})


def total_seconds(directory: str | pathlib.Path) -> float:
  return sum(json.loads(path.read_text())["seconds"] for path in pathlib.Path(directory).rglob("*.seconds.json"))
