"""Muon against AdamW on the CPU speedrun's pretraining stage, over seeds: validation bits per byte at equal
steps (the sweep's table) and at equal wall time (`--compare`).

    lmjax sweep experiments/muon.py --workdir runs/muon [--seeds 0 1 2]
    python experiments/muon.py --compare runs/muon        (val_bpb of both at equal steps and equal wall time)
    python experiments/muon.py --step-time                (seconds per pretraining step of each, side by side)

Both variants run configs/speedrun_cpu.py's chain up to pretraining and its evaluation (clean, tokenizer and
tokenize once for the sweep, pretraining once per variant and seed); "muon" sets optim.name=muon (Muon at
optim.muon_lr=0.02 on the hidden matrices, AdamW at the same optim.lr on the embedding, head and norms).
Hardware: 2 CPU cores, ~4 minutes of pretraining per run. Equal wall time reads each run's metrics.jsonl:
the wall clock of a step is the sum of tokens per step / tokens_per_s over its logged lines, and each run's
val_bpb is taken at the last evaluation before the slower variant's total time at the faster's final step.
On a machine shared with other work the logged throughput measures the load as much as the optimizer, so
`--compare ... --step-seconds adamw=S muon=S` takes each variant's seconds per step instead, as `--step-time`
measures them: the two train steps timed in turn in one process (medians), so the load reaches both alike.
"""
import json
import os

BASE = "configs/speedrun_cpu.py"
PRETRAIN = ("clean", "tokenizer", "tokenize", "pretrain", "eval_pretrain")
VARIANTS = {"adamw": {"chain.stages": PRETRAIN}, "muon": {"chain.stages": PRETRAIN, "optim.name": "muon"}}
SEEDS = [0, 1, 2]


def curve(pretrain_dir: str, step_seconds: float | None = None) -> list[tuple[int, float, float]]:
  """(step, seconds since the start, val_bpb) at every evaluation of a pretraining run; a step takes
  `step_seconds` if given, else what its logged tokens_per_s says."""
  from lmjax.train.metrics import read_metrics
  seconds, last_step, out = 0.0, 0, []
  for line in read_metrics(pretrain_dir):
    per_step = line["tokens_seen"] / line["step"]
    seconds += (line["step"] - last_step) * (step_seconds or per_step / max(line.get("tokens_per_s", 0.0), 1e-9))
    last_step = line["step"]
    if "val_bpb" in line:
      out.append((line["step"], seconds, line["val_bpb"]))
  return out


def compare(workdir: str, step_seconds: dict | None = None) -> dict:
  """{variant: {seed: {"bpb_final", "wall_s", "bpb_at_equal_time"}}} from the sweep's pretraining runs."""
  chains = {}
  for variant in VARIANTS:
    for name in sorted(os.listdir(os.path.join(workdir, variant))):
      with open(os.path.join(workdir, variant, name, "chain.json")) as f:
        stages = {s["stage"]: s["dir"] for s in json.load(f)["stages"]}
      if "pretrain" in stages:  # a run still under way has not recorded it yet
        chains.setdefault(variant, {})[name] = curve(stages["pretrain"], (step_seconds or {}).get(variant))
  out = {}
  for seed in sorted(set.intersection(*(set(c) for c in chains.values()))):
    budget = min(chains[v][seed][-1][1] for v in VARIANTS)  # the faster run's total time
    for variant in VARIANTS:
      points = chains[variant][seed]
      at_budget = [bpb for _, seconds, bpb in points if seconds <= budget * 1.001] or [float("nan")]
      out.setdefault(variant, {})[seed] = {"bpb_final": points[-1][2], "wall_s": points[-1][1],
                                           "bpb_at_equal_time": at_budget[-1]}
  return out


def step_time(steps: int = 20) -> dict:
  """{variant: median seconds per step} of BASE's pretraining step under each variant's optimizer, timed in
  turn in this process on random tokens (experiments/benchmarks/train_throughput.py's interleaving)."""
  import sys

  import jax
  import numpy as np

  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from experiments.benchmarks.train_throughput import random_batch, time_interleaved
  from lmjax import losses
  from lmjax.config import load_config
  from lmjax.train.setup import build_train_setup
  from lmjax.train.step import make_train_step

  def trainer(overrides: dict):
    config = load_config(BASE, [f"{k}={v}" for k, v in overrides.items() if k != "chain.stages"])
    setup = build_train_setup(config)
    step = make_train_step(setup.graphdef, losses.next_token, setup.optimizer, setup.shardings,
                           batch_sharding=setup.batch_sharding, lr_schedule=setup.schedule)
    batch = random_batch(np.random.default_rng(0), setup, config.train.batch_size, config.train.seq_len,
                         config.model.vocab_size)
    state, key = setup.init(), jax.random.key(0)

    def run(i: int) -> float:
      nonlocal state
      state, metrics = step(state, batch, key)
      return float(metrics["loss"])
    return run, {}

  results = time_interleaved({name: trainer(o) for name, o in VARIANTS.items()}, steps)
  return {name: r["step_s"] for name, r in results.items()}


if __name__ == "__main__":
  import argparse

  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", default="runs/muon")
  parser.add_argument("--seeds", nargs="+", default=[str(s) for s in SEEDS])
  parser.add_argument("--compare", metavar="WORKDIR", help="print the equal-step and equal-time table of a sweep")
  parser.add_argument("--step-seconds", nargs="+", metavar="VARIANT=S", help="--compare with these step times")
  parser.add_argument("--step-time", action="store_true", help="time each variant's pretraining step, in turn")
  args, rest = parser.parse_known_args()
  if args.step_time:
    print(f"load average {os.getloadavg()[0]:.2f} at start")
    print(json.dumps(step_time(), indent=2))
    print(f"load average {os.getloadavg()[0]:.2f} at end")
  elif args.compare:
    seconds = {k: float(v) for k, v in (a.split("=") for a in args.step_seconds)} if args.step_seconds else None
    print(json.dumps(compare(args.compare, seconds), indent=2))
  else:
    from lmjax import cli
    cli.main(["sweep", __file__, "--workdir", args.workdir, "--seeds", *args.seeds, *rest])
