"""The speedrun over seeds: configs/speedrun_cpu.py with train.seed = rl.seed = 0, 1, 2, its numbers as mean ± std.

    lmjax sweep experiments/speedrun_seeds.py --workdir runs/speedrun_seeds [--seeds 0 1 2]
    python experiments/speedrun_seeds.py [--workdir runs/speedrun_seeds] [--seeds 0 1 2]   (the same sweep)

Seed s is the run runs/speedrun_seeds/speedrun/seed<s> over the stage root runs/speedrun_seeds/stages, with the
stage keys of `lmjax run --config configs/speedrun_cpu.py --workdir runs/speedrun_seeds/speedrun/seed<s>
--stage-root runs/speedrun_seeds/stages --config.train.seed=<s> --config.rl.seed=<s>`, so either command resumes
the other's runs. clean, tokenizer and tokenize run once (they read no seed); pretraining and every stage after
it once per seed. Hardware: 2 CPU cores, ~18 minutes of stage time per seed (README's speedrun report card).
runs/speedrun_seeds/sweep.md has every headline metric as mean ± std over the seeds (`lmjax report
runs/speedrun_seeds` recomputes it while the sweep runs).
"""
BASE = "configs/speedrun_cpu.py"
VARIANTS = {"speedrun": {}}
SEEDS = [0, 1, 2]

if __name__ == "__main__":
  import argparse

  from lmjax import cli

  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workdir", default="runs/speedrun_seeds")
  parser.add_argument("--seeds", nargs="+", default=[str(s) for s in SEEDS])
  args, rest = parser.parse_known_args()  # the rest (--stage-root, --config.FIELD=VALUE, ...) goes to the sweep
  cli.main(["sweep", __file__, "--workdir", args.workdir, "--seeds", *args.seeds, *rest])
