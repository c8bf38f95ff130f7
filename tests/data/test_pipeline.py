"""The grain pipeline: packed rows keep documents apart, every host reads a disjoint share, and the
iterator state restores the exact next batch. Token shards hold every document once, with BOS and EOS."""
import json

import numpy as np
import pytest
from array_record.python.array_record_module import ArrayRecordReader

from lmjax.config import ConfigError
from lmjax.data.pipeline import make_pretrain_dataset
from lmjax.data.shards import decode_record, shard_paths
from lmjax.data.tokenizer import Tokenizer


def _dataset(workdir, **kw):
  args = dict(seq_len=64, batch_size=4, seed=0, prefetch=0) | kw
  return make_pretrain_dataset(str(workdir / "tokens"), "train", **args)


def test_shards_hold_every_document_once_with_bos_and_eos(tokens_workdir):
  summary = json.loads((tokens_workdir / "tokens" / "summary.json").read_text())
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  count = 0
  for path in shard_paths(str(tokens_workdir / "tokens"), "train"):
    reader = ArrayRecordReader(path)
    for ids in map(decode_record, reader.read_all()):
      assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id and len(ids) > 2
      count += 1
    reader.close()
  assert count == summary["train"]["documents"] > 100
  assert summary["val"]["documents"] > 0


def test_packed_rows_never_cross_documents(tokens_workdir):
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  batch = next(iter(_dataset(tokens_workdir)))
  seg, pos, tokens, targets = batch["segment_ids"], batch["positions"], batch["tokens"], batch["targets"]
  assert tokens.shape == (4, 64) and batch["loss_mask"].dtype == np.float32
  np.testing.assert_array_equal(batch["loss_mask"], seg > 0)
  for b in range(4):
    for t in range(1, 64):
      if seg[b, t] == seg[b, t - 1] and seg[b, t] > 0:
        assert pos[b, t] == pos[b, t - 1] + 1 and tokens[b, t] == targets[b, t - 1]  # same document: shifted
      elif seg[b, t] > 0:
        assert pos[b, t] == 0  # a new document restarts positions
  starts = (pos == 0) & (seg > 0)
  starts[:, 0] = False  # a row may open with the rest of a document split at the previous row's end
  assert starts.any() and (tokens[starts] == tok.bos_id).all()


def test_iterator_state_restores_the_exact_next_batches(tokens_workdir):
  it = iter(_dataset(tokens_workdir, prefetch=2))
  for _ in range(5):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(3)]
  resumed = iter(_dataset(tokens_workdir, prefetch=2))
  resumed.set_state(json.loads(json.dumps(state)))
  for want in expected:
    got = next(resumed)
    for key in want:
      np.testing.assert_array_equal(got[key], want[key])


def test_same_seed_same_batches_different_seed_different(tokens_workdir):
  first = next(iter(_dataset(tokens_workdir, seed=1)))["tokens"]
  np.testing.assert_array_equal(first, next(iter(_dataset(tokens_workdir, seed=1)))["tokens"])
  assert not np.array_equal(first, next(iter(_dataset(tokens_workdir, seed=2)))["tokens"])


def test_hosts_read_disjoint_documents(tokens_workdir):
  def documents(process_index):
    it = _dataset(tokens_workdir, repeat=False, shuffle=False, rows=(process_index, process_index + 1),
                  streams=2, batch_size=2, seq_len=1024)
    rows = [row for batch in it for row, seg in zip(batch["tokens"], batch["segment_ids"])]
    return {tuple(row[:16]) for row in rows[:20]}
  assert not documents(0) & documents(1)


def _concat(batches):
  return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


@pytest.mark.parametrize("streams", [1, 2, 4])
def test_global_batches_and_positions_do_not_depend_on_the_process_count(tokens_workdir, streams):
  whole = _dataset(tokens_workdir, batch_size=8, streams=streams)
  expected = [next(whole) for _ in range(3)]
  for processes in (2, 4):
    parts = [_dataset(tokens_workdir, batch_size=8, streams=streams, rows=(p * 8 // processes,
                                                                            (p + 1) * 8 // processes))
             for p in range(processes)]
    for want in expected[:2]:
      got = _concat([next(part) for part in parts])
      for key in want:
        np.testing.assert_array_equal(got[key], want[key])
    union = {}  # what a checkpoint holds: every process's stream positions
    for part in parts:
      union |= json.loads(json.dumps(part.get_state()))
    assert sorted(union) == [str(s) for s in range(streams)]
    resumed = _dataset(tokens_workdir, batch_size=8, streams=streams)
    resumed.set_state(union)
    np.testing.assert_array_equal(next(resumed)["tokens"], expected[2]["tokens"])
  assert not np.array_equal(expected[0]["tokens"], expected[1]["tokens"])


def test_a_checkpoint_of_other_streams_is_a_clear_error(tokens_workdir):
  state = _dataset(tokens_workdir, streams=2).get_state()
  with pytest.raises(ConfigError, match="has 2 streams but config.data.streams=1"):
    _dataset(tokens_workdir, streams=1).set_state(state)


def test_a_checkpoint_from_before_data_streams_still_resumes(tokens_workdir):
  it = _dataset(tokens_workdir)
  next(it)
  old_state = json.loads(json.dumps(it.iterators[0].get_state()))  # the one grain state older runs saved
  expected = next(it)
  resumed = _dataset(tokens_workdir)
  resumed.set_state(old_state)
  np.testing.assert_array_equal(next(resumed)["tokens"], expected["tokens"])
