"""MinHash dedup through its three shard-parallel stages, on planted near-duplicates of real text."""
import random

import numpy as np
import pytest
from web_test_data import HERE

from lmjax.data.web import minhash, shards
from lmjax.data.web.document import Document

WORDS_PER_DOC = 120


def real_documents() -> list[str]:
  """Distinct 120-word chunks of the shipped Python-docs reST sources."""
  chunks = []
  for path in sorted((HERE / "python_doc_sources").rglob("*.rst.txt")):
    words = path.read_text().split()
    chunks += [" ".join(words[i:i + WORDS_PER_DOC]) for i in range(0, len(words) - WORDS_PER_DOC + 1, WORDS_PER_DOC)]
  return chunks


def edit_words(text: str, fraction: float, rng: random.Random) -> str:
  words = text.split()
  for index in rng.sample(range(len(words)), int(len(words) * fraction)):
    words[index] = rng.choice(["alpha", "beta", "gamma", "delta", "omega"]) + str(rng.randrange(1000))
  return " ".join(words)


def run_dedup(texts: list[str], cfg, tmp_path, num_shards: int = 3) -> set[int]:
  """Indices (into texts) of the documents the three stages remove; texts spread round-robin over shards."""
  shard_docs = [[(i, text) for i, text in enumerate(texts) if i % num_shards == shard] for shard in range(num_shards)]
  signature_paths = []
  for shard, docs in enumerate(shard_docs):
    docs_path = tmp_path / f"{shard}.filtered.zst"
    shards.write_documents(docs_path, (Document(id=str(i), text=text) for i, text in docs), "jsonl.zst")
    signature_paths.append(str(tmp_path / "signatures" / f"{shard:05d}.npy"))
    minhash.signatures_task(str(docs_path), signature_paths[-1], cfg)
  bucket_paths = [str(tmp_path / "buckets" / f"{b:02d}.npy") for b in range(cfg.num_buckets)]
  for bucket, path in enumerate(bucket_paths):
    minhash.buckets_task(bucket, signature_paths, path)
  minhash.clusters_task(bucket_paths, num_shards, str(tmp_path))
  removed = set()
  for shard, docs in enumerate(shard_docs):
    for index in np.load(tmp_path / f"removed_{shard:05d}.npy").tolist():
      removed.add(docs[index][0])
  return removed


def test_minhash_recall_and_false_removals_on_planted_near_duplicates(clean_config, tmp_path):
  rng = random.Random(0)
  originals = real_documents()
  assert len(originals) >= 200
  planted = rng.sample(range(len(originals)), 100)
  texts = originals + [edit_words(originals[i], 0.02, rng) for i in planted]
  removed = run_dedup(texts, clean_config.minhash, tmp_path)
  pairs = [(original, len(originals) + k) for k, original in enumerate(planted)]
  found = sum((a in removed) != (b in removed) for a, b in pairs)  # exactly one of the pair goes
  recall = found / len(pairs)
  in_pairs = {index for pair in pairs for index in pair}
  distinct = [i for i in range(len(originals)) if i not in in_pairs]
  false_removals = sum(i in removed for i in distinct) / len(distinct)
  assert recall >= 0.9, recall
  assert false_removals <= 0.01, false_removals
  # the kept copy of a cluster is the lowest global id: the original (shard, index) sorts first here
  assert all(original not in removed for original, copy in pairs if copy in removed)


def test_minhash_exact_duplicates_collapse_to_one(clean_config, tmp_path):
  text = real_documents()[0]
  removed = run_dedup([text, "something else entirely " * 20, text, text], clean_config.minhash, tmp_path)
  assert removed == {2, 3}


def test_minhash_empty_documents_are_never_clustered(clean_config, tmp_path):
  removed = run_dedup(["", "", "!!!", real_documents()[1]], clean_config.minhash, tmp_path, num_shards=2)
  assert removed == set()


def test_band_keys_are_deterministic_per_seed(clean_config):
  cfg = clean_config.minhash
  a_h, b_h = minhash.hash_permutations(cfg.num_buckets * cfg.hashes_per_bucket, cfg.seed)
  text = real_documents()[3]
  first = minhash.document_band_keys(text, cfg, a_h, b_h)
  assert first.shape == (14,) and np.array_equal(first, minhash.document_band_keys(text, cfg, a_h, b_h))
  other_a, other_b = minhash.hash_permutations(cfg.num_buckets * cfg.hashes_per_bucket, cfg.seed + 1)
  assert not np.array_equal(first, minhash.document_band_keys(text, cfg, other_a, other_b))


@pytest.mark.parametrize("fraction, min_similarity", [(0.0, 1.0), (0.02, 0.75)])
def test_minhash_signature_estimates_jaccard(clean_config, fraction, min_similarity):
  cfg = clean_config.minhash
  a_h, b_h = minhash.hash_permutations(256, cfg.seed)
  text = real_documents()[5]
  copy = edit_words(text, fraction, random.Random(1))
  signature = minhash.minhash_signature(minhash.shingle_hashes(text, 5), a_h, b_h)
  copy_signature = minhash.minhash_signature(minhash.shingle_hashes(copy, 5), a_h, b_h)
  assert np.mean(signature == copy_signature) >= min_similarity - 0.1
