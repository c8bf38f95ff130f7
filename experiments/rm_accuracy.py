"""Held-out pairwise accuracy of a reward model, overall and per kind of rejected reply.

    python experiments/rm_accuracy.py --workdir runs/quickstart_rm

Scores the same held-out pairs `lmjax rm` validated on (its rm.pairs and rm.val_fraction) and prints how
often the chosen reply scores higher, split by the pair's "kind" when it has one (math pairs: wrong_answer,
wrong_step, refusal), with the binomial standard error, so "above chance" can be read against the noise.
"""
import argparse
import collections
import json

import jax
import numpy as np
from flax import nnx

from lmjax.config import load_saved_config
from lmjax.data.documents import is_validation
from lmjax.data.pairs_pipeline import pair_row, preference_pairs
from lmjax.infer.load import load_model


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", required=True, help="an `lmjax rm` run")
  args = parser.parse_args()
  config = load_saved_config(args.workdir)
  loaded = load_model(config, args.workdir, scalar_head=True)
  pairs = [p for p in preference_pairs(config.rm, "rm")
           if is_validation(json.dumps(p, sort_keys=True), config.rm.val_fraction)]
  rows = [(p.get("kind", "all"), pair_row(p, loaded.tokenizer, config.train.seq_len)) for p in pairs]
  rows = [(kind, row) for kind, row in rows if row is not None]
  forward = jax.jit(lambda params, t, pos, seg: nnx.merge(loaded.graphdef, params)(t, pos, seg)[1])
  right = collections.defaultdict(list)
  for kind, row in rows:
    scalars = np.asarray(forward(loaded.params, row["tokens"][None], row["positions"][None],
                                 row["segment_ids"][None]))[0]
    right[kind].append(scalars[row["chosen_index"]] > scalars[row["rejected_index"]])
  right["all"] = [r for kind in list(right) for r in right[kind]]
  print(f"{args.workdir} (step {loaded.step}): held-out pairwise accuracy")
  for kind, hits in sorted(right.items()):
    accuracy = float(np.mean(hits))
    print(f"  {kind:<14} {accuracy:6.1%} ± {np.sqrt(accuracy * (1 - accuracy) / len(hits)):.1%}  ({len(hits)} pairs)")


if __name__ == "__main__":
  main()
