"""Muon against AdamW on the CPU speedrun's pretraining stage, over seeds: validation bits per byte at equal
steps (the sweep's table) and at equal wall time (`--compare`).

    lmjax sweep experiments/muon.py --workdir runs/muon [--seeds 0 1 2]
    python experiments/muon.py --compare runs/muon        (val_bpb of both at equal steps and equal wall time)

Both variants run configs/speedrun_cpu.py's chain up to pretraining and its evaluation (clean, tokenizer and
tokenize once for the sweep, pretraining once per variant and seed); "muon" sets optim.name=muon (Muon at
optim.muon_lr=0.02 on the hidden matrices, AdamW at the same optim.lr on the embedding, head and norms).
Hardware: 2 CPU cores, ~4 minutes of pretraining per run. Equal wall time reads each run's metrics.jsonl:
the wall clock of a step is the sum of tokens per step / tokens_per_s over its logged lines, and each run's
val_bpb is taken at the last evaluation before the slower variant's total time at the faster's final step.
"""
import json
import os

BASE = "configs/speedrun_cpu.py"
PRETRAIN = ("clean", "tokenizer", "tokenize", "pretrain", "eval_pretrain")
VARIANTS = {"adamw": {"chain.stages": PRETRAIN}, "muon": {"chain.stages": PRETRAIN, "optim.name": "muon"}}
SEEDS = [0, 1, 2]


def curve(pretrain_dir: str) -> list[tuple[int, float, float]]:
  """(step, seconds since the start, val_bpb) at every evaluation of a pretraining run."""
  from lmjax.train.metrics import read_metrics
  seconds, last_step, out = 0.0, 0, []
  for line in read_metrics(pretrain_dir):
    per_step = line["tokens_seen"] / line["step"]
    seconds += (line["step"] - last_step) * per_step / max(line.get("tokens_per_s", 0.0), 1e-9)
    last_step = line["step"]
    if "val_bpb" in line:
      out.append((line["step"], seconds, line["val_bpb"]))
  return out


def compare(workdir: str) -> dict:
  """{variant: {seed: {"bpb_final", "wall_s", "bpb_at_equal_time"}}} from the sweep's pretraining runs."""
  chains = {}
  for variant in VARIANTS:
    for name in sorted(os.listdir(os.path.join(workdir, variant))):
      with open(os.path.join(workdir, variant, name, "chain.json")) as f:
        stages = {s["stage"]: s["dir"] for s in json.load(f)["stages"]}
      chains.setdefault(variant, {})[name] = curve(stages["pretrain"])
  out = {}
  for seed in sorted(set.intersection(*(set(c) for c in chains.values()))):
    budget = min(chains[v][seed][-1][1] for v in VARIANTS)  # the faster run's total time
    for variant in VARIANTS:
      points = chains[variant][seed]
      at_budget = [bpb for _, seconds, bpb in points if seconds <= budget * 1.001] or [float("nan")]
      out.setdefault(variant, {})[seed] = {"bpb_final": points[-1][2], "wall_s": points[-1][1],
                                           "bpb_at_equal_time": at_budget[-1]}
  return out


if __name__ == "__main__":
  import argparse

  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", default="runs/muon")
  parser.add_argument("--seeds", nargs="+", default=[str(s) for s in SEEDS])
  parser.add_argument("--compare", metavar="WORKDIR", help="print the equal-step and equal-time table of a sweep")
  args, rest = parser.parse_known_args()
  if args.compare:
    print(json.dumps(compare(args.compare), indent=2))
  else:
    from lmjax import cli
    cli.main(["sweep", __file__, "--workdir", args.workdir, "--seeds", *args.seeds, *rest])
