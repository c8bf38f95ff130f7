"""Ablation: PPO's clip range ε in the speedrun's RL stage. Every stage up to SFT is shared by the variants.

    lmjax sweep experiments/ppo_clip.py --workdir runs/ppo_clip

Writes runs/ppo_clip/sweep.md (final metrics side by side); README "Ablations" has a measured table.
"""
BASE = "configs/speedrun_cpu.py"
VARIANTS = {f"clip_{eps}": {"rl.clip_eps": eps} for eps in (0.1, 0.2, 0.4)}
