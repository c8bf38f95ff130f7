"""RL of the quickstart SFT model on level-1 math word problems: 8 replies per problem, reward 1 for a right
final answer, group-relative advantages, PPO's clipped objective (KL to the SFT model logged, not penalised).

    lmjax rl --config configs/rl_quickstart.py --workdir runs/quickstart_rl \
        --config.rl.base_workdir=runs/quickstart_sft

Hardware: 2 CPU cores, ~60-100 s per iteration. Held-out accuracy (heldout_pass1, heldout_pass_at_g,
heldout_greedy) is logged before the first update and every 10 iterations; README "Post-training" has the
figures measured so far.
"""
from configs import quickstart


def get_config():
  config = quickstart.get_config()
  config.train.update(batch_size=64, seq_len=112)
  # Adam's first steps move every weight by ~lr whatever the gradient: without warm-up, lr 2e-4 took the
  # policy to KL 5 from the SFT model in one iteration and halved its reward.
  config.optim.update(lr=1e-4, weight_decay=0.0)
  config.schedule.update(warmup_steps=8, decay="constant")
  config.rl.update(iterations=20, prompts_per_iteration=32, group_size=8, epochs=1, kl_coef=0.0,
                   max_new_tokens=48, max_reply_tokens=72, rollout_batch=256, eval_every=10,
                   heldout_problems=128, eval_samples=4)
  return config
