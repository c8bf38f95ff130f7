"""`lmjax rm`: train a reward model on preference pairs with the pairwise Bradley–Terry loss.

    lmjax rm --config configs/quickstart.py --workdir runs/rm \
        --config.rm.base_workdir=runs/sft --config.rm.pairs='pairs/*.jsonl'   (or --config.rm.math_problems=2000)

The base run's transformer plus a scalar head read at each response's last token; the loss is
−log σ(r_chosen − r_rejected) and validation reports `val_accuracy`, the share of held-out pairs ranked right.
At the end the held-out pairs of each kind are scored (whole batches) and the summary adds
`rm_accuracy_<kind>` and `rm_pairs_<kind>` per pair kind (for math pairs: wrong_answer, wrong_step, refusal; pairs from files without one: `file`).
"""
import collections
import json
import os

from lmjax import fs, losses
from lmjax.config import ConfigError
from lmjax.data.documents import is_validation
from lmjax.data.posttrain import math_problems, preferences
from lmjax.data.pairs_pipeline import make_pairs_dataset, pair_row, read_pairs
from lmjax.sharding import process_rows
from lmjax.train.base_run import carry_tokenizer, load_base_run, with_backbone
from lmjax.infer.load import load_model
from lmjax.train.loop import StageData, evaluate, global_batch, train
from lmjax.train.setup import build_train_setup, tokenizer_path
from lmjax.train.step import make_eval_step


def preference_pairs(rm_config) -> list[dict]:
  """The pairs of rm.pairs (JSONL files) followed by those built from rm.math_problems generated problems."""
  if not rm_config.pairs and not rm_config.math_problems:
    raise ConfigError("no preference pairs: set config.rm.pairs to a glob of JSONL pairs or "
                      "config.rm.math_problems > 0")
  pairs = read_pairs(rm_config.pairs) if rm_config.pairs else []
  problems = math_problems.generate_problems(rm_config.math_problems, level=rm_config.math_level,
                                             seed=rm_config.math_seed)
  return pairs + preferences.math_preference_pairs(problems, seed=rm_config.math_seed)


def split_pairs(pairs, tokenizer, seq_len: int, val_fraction: float) -> tuple[list, dict, int]:
  """(training rows, held-out rows by pair kind, pairs skipped as longer than seq_len); a pair is held out by
  a hash of its content, so the split does not depend on the order or the other pairs."""
  train_rows, held_out, skipped = [], collections.defaultdict(list), 0
  for pair in pairs:
    row = pair_row(pair, tokenizer, seq_len)
    skipped += row is None
    if row is not None and is_validation(json.dumps(pair, sort_keys=True), val_fraction):
      held_out[pair.get("kind", "file")].append(row)
    elif row is not None:
      train_rows.append(row)
  return train_rows, dict(held_out), skipped


def run(config, workdir: str) -> dict:
  """Trains the reward model from config.rm.base_workdir's parameters on config.rm.pairs."""
  base_config, base = load_base_run(config, config.rm.base_workdir, "rm.base_workdir")
  carry_tokenizer(base_config, config.rm.base_workdir, workdir)
  t = config.train
  train_rows, held_out, skipped = split_pairs(preference_pairs(config.rm), base.tokenizer, t.seq_len,
                                              config.rm.val_fraction)
  val_rows = [row for rows in held_out.values() for row in rows]
  setup = build_train_setup(config, tokenizer_path(base_config, config.rm.base_workdir), scalar_head=True)
  dataset = lambda r, **kw: make_pairs_dataset(
      r, batch_size=t.batch_size, process_rows=process_rows(setup.batch_sharding, t.batch_size), **kw)
  val = list(dataset(val_rows, seed=0, shuffle=False, repeat=False))[: config.eval.batches] if val_rows else []
  print(f"rm: {len(train_rows)} training and {len(val_rows)} validation pairs "
        f"({skipped} longer than train.seq_len skipped), from {config.rm.base_workdir} (step {base.step})")
  data = StageData(dataset(train_rows, seed=t.seed, streams=config.data.streams), val)
  summary = train(config, workdir, setup, data, loss_fn=losses.pairwise_bce, loss_name="pairwise_bce",
                  init_state=lambda: with_backbone(setup, base))
  summary |= accuracy_by_kind(config, setup, workdir, held_out, dataset)
  fs.write_text(os.path.join(workdir, "summary.json"), json.dumps(summary, indent=2))
  return summary


def accuracy_by_kind(config, setup, workdir: str, rows_by_kind: dict, dataset) -> dict:
  """`rm_accuracy_<kind>` (pairs ranked right) and `rm_pairs_<kind>` of the trained model over each kind's
  held-out pairs, in whole batches of train.batch_size (a kind with fewer pairs than that is not scored)."""
  loaded = load_model(config, workdir, scalar_head=True)
  eval_step = make_eval_step(loaded.graphdef, losses.pairwise_bce, setup.shardings.params,
                             batch_sharding=setup.batch_sharding, micro_batches=config.train.grad_accum_steps)
  out, lines = {}, []
  for kind, kind_rows in sorted(rows_by_kind.items()):
    batches = [global_batch(setup, b) for b in dataset(kind_rows, seed=0, shuffle=False, repeat=False)]
    if batches:
      accuracy, pairs = evaluate(eval_step, loaded.params, batches)["val_accuracy"], len(batches) * config.train.batch_size
      out |= {f"rm_accuracy_{kind}": accuracy, f"rm_pairs_{kind}": pairs}
      lines.append(f"{kind} {accuracy:.3f} ({pairs} pairs)")
  print(f"rm: held-out accuracy by kind: {', '.join(lines)}")
  return out
