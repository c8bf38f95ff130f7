"""RL of an SFT model on level-1 math word problems: 8 replies per problem, reward 1 for a right final
answer, the correct replies reinforced (positive part of the group-relative advantage) through PPO's clipped
objective, 4 epochs over each iteration's rollouts, plain SGD (KL to the SFT model logged, not penalised).

    lmjax rl --config configs/rl_quickstart.py --workdir runs/quickstart_rl \
        --config.rl.base_workdir=runs/quickstart_sft

Why SGD: `experiments/rl_update_probe.py` showed that Adam's early steps (about lr·sign(gradient) for every
weight) made every reply on unseen problems less likely, right or wrong, while SGD's step, proportional to the
gradient, moved right replies up relative to wrong ones; 4 epochs moved them ~2.6× further than 1 at the same
KL. Hardware: 2 CPU cores, ~90 s per iteration; held-out accuracy (heldout_pass1, heldout_pass_at_g,
heldout_greedy) before the first update and after the last. README "Post-training" has the figures.
"""
from configs import quickstart


def get_config():
  config = quickstart.get_config()
  config.train.update(batch_size=64, seq_len=112)
  config.optim.update(name="sgd", lr=0.1, weight_decay=0.0)
  config.schedule.update(warmup_steps=0, decay="constant")
  config.rl.update(iterations=12, prompts_per_iteration=32, group_size=8, epochs=4, kl_coef=0.0,
                   advantage="group_positive", eval_every=12, heldout_problems=128, eval_samples=8)
  # 64 engine slots, not all 256 replies at once: a finished reply's slot takes the next prompt (measured by
  # experiments/benchmarks/rollout_throughput.py: 20.4 replies/s at 64 slots, 16.9 at 256; the replies are
  # the same whatever the slots, each sampled from its own seed).
  config.rollout.update(max_new_tokens=48, max_reply_tokens=72, batch=64)
  return config
