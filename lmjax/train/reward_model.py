"""`lmjax rm`: train a reward model on preference pairs with the pairwise Bradley–Terry loss.

    lmjax rm --config configs/quickstart.py --workdir runs/rm \
        --config.rm.base_workdir=runs/sft --config.rm.pairs='pairs/*.jsonl'   (or --config.rm.math_problems=2000)

The base run's transformer plus a scalar head read at each response's last token, plus rm.logprob_weight ×
the response's mean token log-prob under the model's own language-model head (0: the head alone); the loss
is −log σ(r_chosen − r_rejected) and validation reports `val_accuracy`, the share of held-out pairs ranked
right.
At the end the held-out pairs of each kind are scored (whole batches) and the summary adds
`rm_accuracy_<kind>` and `rm_pairs_<kind>` per pair kind (for math pairs: wrong_answer, wrong_step, refusal; pairs from files without one: `file`).
"""
import functools
import json
import os

from lmjax import fs, losses
from lmjax.config import ConfigError
from lmjax.data.pairs_pipeline import make_pairs_dataset, preference_pairs, split_pairs
from lmjax.sharding import process_rows
from lmjax.train.base_run import carry_tokenizer, load_base_run, with_backbone
from lmjax.train.loop import StageData, train
from lmjax.train.pair_accuracy import accuracy_by_kind
from lmjax.train.setup import build_train_setup, tokenizer_path


def reward_loss(logprob_weight: float):
  """(LOSSES name, bound loss) of a reward model whose score adds `logprob_weight` × its replies' mean
  log-prob: the table entry that reads logits only when the weight is not 0."""
  if logprob_weight < 0:
    raise ConfigError(f"config.rm.logprob_weight={logprob_weight}; use 0 (the scalar head alone) or more")
  name = "pairwise_bce_logprob" if logprob_weight else "pairwise_bce"
  return name, functools.partial(losses.pairwise_bce, logprob_weight=logprob_weight)


def run(config, workdir: str) -> dict:
  """Trains the reward model from config.rm.base_workdir's parameters on config.rm.pairs."""
  base_config, base = load_base_run(config, config.rm.base_workdir, "rm.base_workdir")
  carry_tokenizer(base_config, config.rm.base_workdir, workdir)
  t = config.train
  train_rows, held_out, skipped = split_pairs(preference_pairs(config.rm, "rm"), base.tokenizer, t.seq_len,
                                              config.rm.val_fraction)
  val_rows = [row for rows in held_out.values() for row in rows]
  setup = build_train_setup(config, tokenizer_path(base_config, config.rm.base_workdir), scalar_head=True)
  dataset = lambda r, **kw: make_pairs_dataset(
      r, batch_size=t.batch_size, process_rows=process_rows(setup.batch_sharding, t.batch_size), **kw)
  val = list(dataset(val_rows, seed=0, shuffle=False, repeat=False))[: config.eval.batches] if val_rows else []
  print(f"rm: {len(train_rows)} training and {len(val_rows)} validation pairs "
        f"({skipped} longer than train.seq_len skipped), from {config.rm.base_workdir} (step {base.step})")
  data = StageData(dataset(train_rows, seed=t.seed, streams=config.data.streams), val)
  loss_name, loss_fn = reward_loss(config.rm.logprob_weight)
  summary = train(config, workdir, setup, data, loss_fn=loss_fn, loss_name=loss_name,
                  init_state=lambda: with_backbone(setup, base))
  summary |= accuracy_by_kind(config, setup, workdir, held_out, dataset, loss_fn=loss_fn, prefix="rm",
                              scalar_head=True)
  fs.write_text(os.path.join(workdir, "summary.json"), json.dumps(summary, indent=2))
  return summary
