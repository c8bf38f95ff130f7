"""`lmjax dpo`: train the policy on preference pairs directly (DPO, IPO, SimPO or ORPO), from an SFT run.

    lmjax dpo --config configs/dpo_quickstart.py --workdir runs/quickstart_dpo \
        --config.dpo.base_workdir=runs/quickstart_sft   [--config.dpo.loss=ipo|simpo|orpo]

Pairs come as the reward model's do (config.dpo.pairs JSONL and/or config.dpo.math_problems generated math
pairs); each row packs one pair, chosen then rejected, and the loss (config.dpo.loss, an entry of
lmjax.losses.LOSSES) reads each reply's summed token log-probs. DPO and IPO compare them with the frozen base
model's, computed once over every pair before training and stored in the rows (`ref_chosen_logprob`,
`ref_rejected_logprob`), so the step never runs the reference model; SimPO and ORPO need none.
The same loop and train step as SFT, resumable exactly. Logged per step: loss, accuracy, margin (the implicit
reward margin), chosen/rejected reward and log-prob; validation adds `val_<each>`, `val_accuracy` being the
share of held-out pairs whose implicit reward ranks chosen above rejected (a tie counts half). The summary
adds `dpo_accuracy_<kind>` per pair kind, as the reward model's does.
"""
import functools
import json
import os

import jax
import numpy as np
from flax import nnx

from lmjax import fs, losses
from lmjax.config import ConfigError
from lmjax.data.pairs_pipeline import make_pairs_dataset, preference_pairs, split_pairs
from lmjax.sharding import process_rows, replicated
from lmjax.train import lora
from lmjax.train.base_run import carry_tokenizer, load_base_run, start_state
from lmjax.train.loop import StageData, global_batch, train
from lmjax.train.pair_accuracy import accuracy_by_kind
from lmjax.train.setup import build_train_setup, tokenizer_path

REFERENCE_KEYS = ("ref_chosen_logprob", "ref_rejected_logprob")
_SCORED_KEYS = ("tokens", "positions", "segment_ids", "targets", "chosen_mask", "rejected_mask")


def bound_loss(dpo_config):
  """config.dpo.loss's function with its hyperparameters bound (the step never reads the config)."""
  d = dpo_config
  if d.loss not in losses.PREFERENCE_LOSSES:
    raise ConfigError(f"config.dpo.loss={d.loss!r}; use one of {', '.join(losses.PREFERENCE_LOSSES)}")
  kwargs = {"dpo": dict(beta=d.beta), "ipo": dict(beta=d.beta),
            "simpo": dict(beta=d.simpo_beta, gamma=d.simpo_gamma), "orpo": dict(lam=d.orpo_lambda)}[d.loss]
  return functools.partial(losses.LOSSES[d.loss].fn, **kwargs)


def needs_reference(loss_name: str) -> bool:
  """Whether the loss reads the reference model's log-probs (derived from its declared batch keys)."""
  return set(REFERENCE_KEYS) <= set(losses.LOSSES[loss_name].batch_keys)


def reference_scorer(graphdef, mesh):
  """A jitted `score(params, batch) -> (log π(chosen) [b], log π(rejected) [b])`, replicated on `mesh` so that
  every process reads every row's scores."""
  return jax.jit(lambda params, batch: losses.response_logprobs(nnx.merge(graphdef, params), batch)[:2],
                 out_shardings=replicated(mesh))


def with_reference_logprobs(rows: list[dict], score, params, setup, chunk: int) -> list[dict]:
  """Each row with `ref_chosen_logprob` / `ref_rejected_logprob`: the frozen base model's summed log-probs of
  its two replies by `score` (`reference_scorer`), `chunk` rows at a time on the mesh, this process feeding
  its rows of each chunk."""
  start, stop = process_rows(setup.batch_sharding, chunk)
  scored = []
  for first in range(0, len(rows), chunk):
    part = rows[first:first + chunk]
    part = part + [part[0]] * (chunk - len(part))  # the last chunk padded to the compiled shape
    local = {k: np.stack([row[k] for row in part[start:stop]]) for k in _SCORED_KEYS}
    chosen_b, rejected_b = jax.device_get(score(params, global_batch(setup, local)))
    scored += [dict(row, ref_chosen_logprob=np.float32(c), ref_rejected_logprob=np.float32(r))
               for row, c, r in zip(rows[first:first + chunk], chosen_b, rejected_b)]
  return scored


def run(config, workdir: str) -> dict:
  """Trains the policy from config.dpo.base_workdir's parameters (all its weights, or LoRA adapters on it with
  model.lora.rank > 0) on config.dpo's pairs with config.dpo.loss."""
  d, t = config.dpo, config.train
  config = lora.with_base(config, d.base_workdir)
  loss_fn = bound_loss(d)
  base_config, base = load_base_run(config, d.base_workdir, "dpo.base_workdir")
  carry_tokenizer(base_config, d.base_workdir, workdir)
  train_rows, held_out, skipped = split_pairs(preference_pairs(d, "dpo"), base.tokenizer, t.seq_len,
                                              d.val_fraction)
  setup = build_train_setup(config, tokenizer_path(base_config, d.base_workdir))
  if needs_reference(d.loss):
    chunk = t.batch_size // t.grad_accum_steps  # the train step's micro-batch: its logits already fit
    scorer = reference_scorer(base.graphdef, setup.mesh)
    score = lambda rows: with_reference_logprobs(rows, scorer, base.params, setup, chunk)
    train_rows, held_out = score(train_rows), {kind: score(rows) for kind, rows in held_out.items()}
  val_rows = [row for rows in held_out.values() for row in rows]
  dataset = lambda r, **kw: make_pairs_dataset(
      r, batch_size=t.batch_size, process_rows=process_rows(setup.batch_sharding, t.batch_size), **kw)
  val = list(dataset(val_rows, seed=0, shuffle=False, repeat=False))[: config.eval.batches] if val_rows else []
  print(f"dpo: {d.loss} on {len(train_rows)} training and {len(val_rows)} validation pairs "
        f"({skipped} longer than train.seq_len skipped), from {d.base_workdir} (step {base.step})"
        + ("; reference log-probs scored once" if needs_reference(d.loss) else "; no reference model"))
  data = StageData(dataset(train_rows, seed=t.seed, streams=config.data.streams), val)
  summary = train(config, workdir, setup, data, loss_fn=loss_fn, loss_name=d.loss,
                  init_state=lambda: start_state(setup, base.params), frozen=setup.frozen(base.params))
  summary |= accuracy_by_kind(config, setup, workdir, held_out, dataset, loss_fn=loss_fn, prefix="dpo")
  fs.write_text(os.path.join(workdir, "summary.json"), json.dumps(summary, indent=2))
  return summary
