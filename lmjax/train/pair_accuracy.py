"""Held-out preference accuracy per kind of pair, for the stages that train on pairs (reward model, DPO).

Math pairs have kinds (wrong_answer, wrong_step, refusal); pairs from files without one are `file`. Each
kind's rows are scored by the stage's own loss in whole batches of train.batch_size (a kind with fewer pairs
than that is not scored), and its `val_accuracy` is reported as `<prefix>_accuracy_<kind>`.
"""
from collections.abc import Callable

from lmjax.infer.load import load_model
from lmjax.train.loop import evaluate, global_batch
from lmjax.train.step import make_eval_step


def accuracy_by_kind(config, setup, workdir: str, rows_by_kind: dict, dataset, *, loss_fn: Callable, prefix: str,
                     scalar_head: bool = False) -> dict:
  """`<prefix>_accuracy_<kind>` (pairs ranked right) and `<prefix>_pairs_<kind>` of WORKDIR's trained model
  over each kind's held-out rows; `dataset(rows, seed=, shuffle=, repeat=)` batches them as in training."""
  loaded = load_model(config, workdir, scalar_head=scalar_head)
  model_shardings = setup.model_shardings if setup.lora else setup.shardings.params  # loading merges LoRA
  eval_step = make_eval_step(loaded.graphdef, loss_fn, model_shardings,
                             batch_sharding=setup.batch_sharding, micro_batches=config.train.grad_accum_steps)
  out, lines = {}, []
  for kind, kind_rows in sorted(rows_by_kind.items()):
    batches = [global_batch(setup, b) for b in dataset(kind_rows, seed=0, shuffle=False, repeat=False)]
    if batches:
      accuracy, pairs = evaluate(eval_step, loaded.params, batches)["val_accuracy"], len(batches) * config.train.batch_size
      out |= {f"{prefix}_accuracy_{kind}": accuracy, f"{prefix}_pairs_{kind}": pairs}
      lines.append(f"{kind} {accuracy:.3f} ({pairs} pairs)")
  print(f"{prefix}: held-out accuracy by kind: {', '.join(lines)}")
  return out
