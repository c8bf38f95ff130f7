"""`lmjax pretrain`: train the model on token shards with the next-token loss, resumably.

    lmjax pretrain --config configs/quickstart.py --workdir runs/quickstart

Writes WORKDIR/config.json, metrics.jsonl (+ tensorboard/), checkpoints/ and summary.json. Rerunning the
same command on the same WORKDIR resumes from the last checkpoint, data position included.
"""
import json
import os

from lmjax import fs, losses
from lmjax.data.pipeline import make_pretrain_dataset
from lmjax.sharding import process_rows
from lmjax.train.loop import StageData, train
from lmjax.train.setup import build_train_setup, tokenizer_path, tokens_dir


def bytes_per_target(tokens_root: str) -> float | None:
  """Validation text bytes per predicted token (targets exclude each document's BOS), for bits per byte."""
  path = os.path.join(tokens_root, "summary.json")
  if not fs.exists(path):
    return None
  val = json.loads(fs.read_text(path))["val"]
  return val["bytes"] / max(val["tokens"] - val["documents"], 1)


def run(config, workdir: str) -> dict:
  """Trains `config.train.steps` steps (resuming if WORKDIR has a checkpoint); returns the summary."""
  setup = build_train_setup(config, tokenizer_path(config, workdir))
  t, root = config.train, tokens_dir(config, workdir)
  rows = process_rows(setup.batch_sharding, t.batch_size)  # this process's rows of every global batch
  dataset = lambda split, **kw: make_pretrain_dataset(root, split, seq_len=t.seq_len, batch_size=t.batch_size,
                                                      rows=rows, **kw)
  train_data = dataset("train", seed=t.seed, streams=config.data.streams, prefetch=config.data.prefetch)
  # One validation stream: every process sees the same number of batches before it runs out.
  val = dataset("val", seed=0, shuffle=False, repeat=False, prefetch=0) if config.eval.batches else iter(())
  data = StageData(train_data, [b for _, b in zip(range(config.eval.batches), val)], bytes_per_target(root))
  return train(config, workdir, setup, data, loss_fn=losses.LOSSES[t.loss].fn, loss_name=t.loss,
               init_state=setup.init)
