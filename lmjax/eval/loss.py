"""Held-out loss and bits per byte: the next-token loss over the validation token shards.

The same loss function, packing and bytes-per-target as pretraining's validation, so `val_loss` and `val_bpb`
here match the pretraining run's last logged ones when both read the same rows (`loss_batches` = its
eval.batches); by default every val row is scored, which makes `val_bpb` exact: the loss summed over all
target tokens, in bits, over all the split's text bytes.
"""
import math

import numpy as np

from lmjax import losses
from lmjax.config import ConfigError
from lmjax.data.pipeline import make_pretrain_dataset
from lmjax.eval import model_run
from lmjax.train.loop import evaluate
from lmjax.train.pretrain import bytes_per_target
from lmjax.train.setup import build_model_setup
from lmjax.train.step import make_eval_step


def val_batches(tokens_root: str, *, seq_len: int, batch_size: int, limit: int = 0) -> list[dict]:
  """The val split packed into rows of seq_len, in batches of batch_size; the last batch padded with empty
  rows (loss_mask 0), so no target is dropped. `limit` > 0 keeps only the first `limit` batches."""
  rows = list(make_pretrain_dataset(tokens_root, "val", seq_len=seq_len, batch_size=1, seed=0, shuffle=False,
                                    repeat=False, prefetch=0))
  if limit:
    rows = rows[:limit * batch_size]
  batches = []
  for start in range(0, len(rows), batch_size):
    chunk = rows[start:start + batch_size]
    batch = {k: np.concatenate([r[k] for r in chunk]) for k in chunk[0]}
    missing = batch_size - len(chunk)
    batches.append({k: np.pad(v, [(0, missing), (0, 0)]) for k, v in batch.items()})
  return batches


def evaluate_loss(config, run) -> dict:
  """`val_loss` (nats per target token), `val_bpb` (if the shards' summary.json gives their bytes) and
  `val_tokens` (targets scored) of the model on the val split."""
  root = model_run.val_tokens_dir(run.lineage, config.eval.tokens_dir)
  if root is None:
    raise ConfigError(f"no val token shards for {run.lineage[0].workdir}: its lineage has no pretraining run "
                      "with tokens/val; set config.eval.tokens_dir")
  t = run.lineage[0].config.train
  batches = val_batches(root, seq_len=t.seq_len, batch_size=t.batch_size, limit=config.eval.loss_batches)
  if not batches:
    raise ConfigError(f"the val split in {root} holds no full row of {t.seq_len} tokens")
  setup = build_model_setup(run.lineage[0].config)  # the loaded model's shardings (a critic run's: its policy)
  step = make_eval_step(run.loaded.graphdef, losses.next_token, setup.param_shardings,
                        batch_sharding=setup.batch_sharding, micro_batches=t.grad_accum_steps)  # as trained
  result = evaluate(step, run.loaded.params, batches)
  out = {"val_loss": result["val_loss"], "val_tokens": int(sum(b["loss_mask"].sum() for b in batches))}
  per_target = bytes_per_target(root)
  if per_target:
    out["val_bpb"] = out["val_loss"] / math.log(2) / per_target
  return out
