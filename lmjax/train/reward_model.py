"""`lmjax rm`: train a reward model on preference pairs with the pairwise Bradley–Terry loss.

    lmjax rm --config configs/quickstart.py --workdir runs/rm \
        --config.rm.base_workdir=runs/sft --config.rm.pairs='pairs/*.jsonl'

The base run's transformer plus a scalar head read at each response's last token; the loss is
−log σ(r_chosen − r_rejected) and validation reports `val_accuracy`, the share of held-out pairs ranked right.
"""
import json

from lmjax import losses
from lmjax.data.documents import is_validation
from lmjax.data.pairs_pipeline import make_pairs_dataset, pair_row, read_pairs
from lmjax.sharding import process_rows
from lmjax.train.base_run import carry_tokenizer, load_base_run, with_backbone
from lmjax.train.loop import StageData, train
from lmjax.train.setup import build_train_setup, tokenizer_path


def run(config, workdir: str) -> dict:
  """Trains the reward model from config.rm.base_workdir's parameters on config.rm.pairs."""
  base_config, base = load_base_run(config, config.rm.base_workdir, "rm.base_workdir")
  carry_tokenizer(base_config, config.rm.base_workdir, workdir)
  t = config.train
  rows = {False: [], True: []}
  skipped = 0
  for pair in read_pairs(config.rm.pairs):
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
