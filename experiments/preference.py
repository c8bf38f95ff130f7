"""The two preference routes after SFT, over seeds: a reward model then RL (rm_ppo) against DPO (dpo), on the CPU
speedrun's held-out math.

    lmjax sweep experiments/preference.py --workdir runs/preference [--seeds 0 1 2]

Both variants are configs/speedrun_cpu.py; only chain.preference differs, so per seed they share every stage up to
SFT (and its evaluation) and differ in rm -> rl -> eval_rl against dpo -> eval_dpo (DPO on the same 2,000 math
pairs the reward model learns from: config.dpo, config.stage.dpo). The final policy's evaluation is the headline's
`final.*` in both routes: `final.math_pass1` (held-out math, a sample per problem), `final.math_pass_at_k`,
`final.mc_accuracy`, ..., each with dpo's paired difference from rm_ppo and its 95% interval in
runs/preference/sweep.md. Hardware: 2 CPU cores, ~18 minutes of stage time per seed for rm_ppo (README's speedrun
report card) plus DPO's few minutes. README "Preference optimisation" has the table once measured.
"""
BASE = "configs/speedrun_cpu.py"
VARIANTS = {"rm_ppo": {"chain.preference": "rm_ppo"}, "dpo": {"chain.preference": "dpo"}}
SEEDS = [0, 1, 2]
