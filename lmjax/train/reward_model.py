"""`lmjax rm`: train a reward model on preference pairs with the pairwise Bradley–Terry loss.

    lmjax rm --config configs/quickstart.py --workdir runs/rm \
        --config.rm.base_workdir=runs/sft --config.rm.pairs='pairs/*.jsonl'   (or --config.rm.math_problems=2000)

The base run's transformer plus a scalar head read at each response's last token; the loss is
−log σ(r_chosen − r_rejected) and validation reports `val_accuracy`, the share of held-out pairs ranked right.
"""
import json

from lmjax import losses
from lmjax.config import ConfigError
from lmjax.data.documents import is_validation
from lmjax.data.posttrain import math_problems, preferences
from lmjax.data.pairs_pipeline import make_pairs_dataset, pair_row, read_pairs
from lmjax.sharding import process_rows
from lmjax.train.base_run import carry_tokenizer, load_base_run, with_backbone
from lmjax.train.loop import StageData, train
from lmjax.train.setup import build_train_setup, tokenizer_path


def preference_pairs(rm_config) -> list[dict]:
  """The pairs of rm.pairs (JSONL files) followed by those built from rm.math_problems generated problems."""
  if not rm_config.pairs and not rm_config.math_problems:
    raise ConfigError("no preference pairs: set config.rm.pairs to a glob of JSONL pairs or "
                      "config.rm.math_problems > 0")
  pairs = read_pairs(rm_config.pairs) if rm_config.pairs else []
  problems = math_problems.generate_problems(rm_config.math_problems, level=rm_config.math_level,
                                             seed=rm_config.math_seed)
  return pairs + preferences.math_preference_pairs(problems, seed=rm_config.math_seed)


def run(config, workdir: str) -> dict:
  """Trains the reward model from config.rm.base_workdir's parameters on config.rm.pairs."""
  base_config, base = load_base_run(config, config.rm.base_workdir, "rm.base_workdir")
  carry_tokenizer(base_config, config.rm.base_workdir, workdir)
  t = config.train
  rows = {False: [], True: []}
  skipped = 0
  for pair in preference_pairs(config.rm):
    row = pair_row(pair, base.tokenizer, t.seq_len)
    skipped += row is None
    if row is not None:
      rows[is_validation(json.dumps(pair, sort_keys=True), config.rm.val_fraction)].append(row)
  setup = build_train_setup(config, tokenizer_path(base_config, config.rm.base_workdir), scalar_head=True)
  dataset = lambda r, **kw: make_pairs_dataset(
      r, batch_size=t.batch_size, process_rows=process_rows(setup.batch_sharding, t.batch_size), **kw)
  val = list(dataset(rows[True], seed=0, shuffle=False, repeat=False))[: config.eval.batches] if rows[True] else []
  print(f"rm: {len(rows[False])} training and {len(rows[True])} validation pairs "
        f"({skipped} longer than train.seq_len skipped), from {config.rm.base_workdir} (step {base.step})")
  data = StageData(dataset(rows[False], seed=t.seed, streams=config.data.streams), val)
  return train(config, workdir, setup, data, loss_fn=losses.pairwise_bce, loss_name="pairwise_bce",
               init_state=lambda: with_backbone(setup, base))
