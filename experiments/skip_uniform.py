"""Ablation: the speedrun's RL trained on every group, or only on the groups whose replies got different
rewards (rl.skip_uniform_groups, DAPO's dynamic sampling without resampling), over seeds.

    lmjax sweep experiments/skip_uniform.py --workdir runs/skip_uniform [--stage-root runs/speedrun_seeds/stages]

The speedrun skips them (configs/speedrun_cpu.py); `all_groups` turns that off. Both variants share every
stage up to the reward model; they differ in rl and eval_rl. From the speedrun's
800-step SFT models 79–93% of the groups of 8 are all right, so skipping them shrinks the PPO update (most of
RL's time) several-fold and makes each step larger (a minibatch's normaliser counts only informative rows).
Compare `eval_rl.math_pass1` / `math_greedy` (the paired "− skip_uniform" columns of sweep.md) and the stage
seconds in each run's report.md. README "Does every stage help, on every seed?" has the result.
"""
BASE = "configs/speedrun_cpu.py"
VARIANTS = {"skip_uniform": {}, "all_groups": {"rl.skip_uniform_groups": False}}
SEEDS = [0, 1, 2]
