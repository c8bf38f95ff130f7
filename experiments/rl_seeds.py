"""RL over several seeds from one SFT run, and the table of held-out math accuracy before and after.

    python experiments/rl_seeds.py --base runs/quickstart_sft --seeds 0 1 2 [--config.rl.iterations=30 ...]

Runs `lmjax rl --config configs/rl_quickstart.py` once per seed into runs/rl_seed<N> (resuming any that
stopped), then prints held-out pass@1 (mean accuracy of a sample), pass@G and greedy accuracy at iteration 0
(the SFT model) and at the last iteration, per seed and as mean ± std. The seed changes the training problems'
order, the rollouts and the minibatches; the held-out problems are the same for every seed.
"""
import argparse
import os
import subprocess
import sys

import numpy as np

from lmjax.train.metrics import read_metrics

KEYS = ("heldout_pass1", "heldout_pass_at_g", "heldout_greedy")


def evaluations(workdir: str) -> list[dict]:
  return [m for m in read_metrics(workdir) if "heldout_pass1" in m]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--base", required=True, help="the SFT run to start from")
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--config", default="configs/rl_quickstart.py")
  parser.add_argument("--runs", default="runs", help="where the per-seed run directories go")
  args, overrides = parser.parse_known_args()
  rows = []
  for seed in args.seeds:
    workdir = os.path.join(args.runs, f"rl_seed{seed}")
    subprocess.run([sys.executable, "-m", "lmjax.cli", "rl", "--config", args.config, "--workdir", workdir,
                    f"--config.rl.base_workdir={args.base}", f"--config.rl.seed={seed}", *overrides], check=True)
    evals = evaluations(workdir)
    rows.append((seed, evals[0], evals[-1]))
  print(f"\nheld-out accuracy on {args.base}'s math problems, before (iteration 0) and after RL")
  print(f"{'seed':>6} {'iteration':>10} " + " ".join(f"{k:>24}" for k in KEYS))
  for seed, before, after in rows:
    for m in (before, after):
      print(f"{seed:>6} {m['step']:>10} " + " ".join(f"{m[k]:>24.3f}" for k in KEYS))
  for label, index in (("before", 1), ("after", 2)):
    values = {k: np.array([row[index][k] for row in rows]) for k in KEYS}
    print(f"{label:>17} " + " ".join(f"{values[k].mean():>15.3f} ± {values[k].std():.3f}" for k in KEYS))


if __name__ == "__main__":
  main()
