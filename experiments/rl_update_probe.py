"""What one RL iteration's update does to replies it did not train on: a cheap check of an RL recipe.

    python experiments/rl_update_probe.py --base runs/quickstart_sft [--config.optim.lr=2e-4 ...]

Samples one iteration's rollouts to train on and a second, independent set of problems and rollouts to judge
by; for each variant (optimizer, learning rate, advantages) it runs `--passes` epochs on the training
rollouts through the real train step, then re-scores the judging rollouts under the updated policy and prints
the importance-weighted estimate of their expected reward (self-normalised per problem: no new sampling), the
mean change of a reply's log-probability for right and for wrong replies, and the per-token KL it moved.
A recipe that does not raise the estimate on unseen problems will not raise held-out accuracy either.
"""
import argparse
import time

import numpy as np

from configs import rl_quickstart
from lmjax.config import load_config
from lmjax.infer.engine import cache_length
from lmjax.infer.tools import make_tools
from lmjax.rl import experience
from lmjax.rl.advantages import ESTIMATORS
from lmjax.rl.collect import collect, iteration_problems
from lmjax.rl.replies import ReplySampler
from lmjax.rl.settings import policy_loss, with_derived_steps
from lmjax.rl.update import ppo_epochs
from lmjax.train import rl
from lmjax.train.base_run import fresh_state, load_base_run
from lmjax.train.setup import build_train_setup, tokenizer_path
from lmjax.train.step import make_train_step

ADAM = {"optim.name": "adamw", "optim.lr": 1e-4, "schedule.warmup_steps": 8, "rl.advantage": "group_relative"}
SGD = {"optim.name": "sgd", "optim.lr": 0.1, "schedule.warmup_steps": 0, "rl.advantage": "group_relative"}
VARIANTS = {  # each a whole recipe; every variant runs one epoch per pass (--passes)
    "adam lr1e-4": ADAM,
    "adam lr1e-4 b2=0.999": {**ADAM, "optim.b2": 0.999},
    "adam lr1e-4 positive": {**ADAM, "rl.advantage": "group_positive"},
    "adam lr3e-5 no warm-up": {**ADAM, "optim.lr": 3e-5, "schedule.warmup_steps": 0},
    "sgd lr0.03": {**SGD, "optim.lr": 0.03},
    "sgd lr0.1": SGD,
    "sgd lr0.3": {**SGD, "optim.lr": 0.3},
    "sgd lr0.03 positive": {**SGD, "optim.lr": 0.03, "rl.advantage": "group_positive"},
    "sgd lr0.1 positive": {**SGD, "rl.advantage": "group_positive"},
    "sgd lr0.1 unscaled": {**SGD, "rl.scale_advantages": False},
    "sgd lr1": {**SGD, "optim.lr": 1.0},
}


def variant_config(base, overrides: dict):
  config = base.copy_and_resolve_references()
  config.rl.epochs = 1
  for key, value in overrides.items():
    section, field = key.split(".")
    config[section][field] = value
  return with_derived_steps(config)


def sequence_logprob_change(score, params, rows, old_logprobs, place, chunk):
  """Per reply: Σ over its sampled tokens of log π_new − log π_old; and the mean per-token KL estimate."""
  new, _ = experience.score_in_chunks(score, params, rows, chunk, place)
  mask = rows["loss_mask"]
  delta = ((new - old_logprobs) * mask).sum(axis=1)
  kl = (0.5 * (new - old_logprobs) ** 2 * mask).sum() / mask.sum()
  return delta, kl


def weighted_reward(delta_b, rewards_b, group_size):
  """Expected reward under the new policy, estimated from the old policy's replies, per-problem normalised."""
  w = np.exp(delta_b - delta_b.max()).reshape(-1, group_size)
  return float(((w * rewards_b.reshape(-1, group_size)).sum(1) / w.sum(1)).mean())


def probe(config, base, base_config, base_dir, train_rows, judge, passes: int) -> dict:
  """Trains a fresh state on `train_rows` for `passes` epochs; what that did to the judging replies."""
  setup = build_train_setup(config, tokenizer_path(base_config, base_dir))
  scorers = rl.make_scorers(config, setup, base, critic=False)
  step = make_train_step(setup.graphdef, policy_loss(config.rl)[1], setup.optimizer, setup.shardings,
                         batch_sharding=setup.batch_sharding, grad_accum_steps=config.train.grad_accum_steps,
                         lr_schedule=setup.schedule)
  state = fresh_state(setup, base.params)
  rows, rewards_b = dict(train_rows[0]), train_rows[1]
  estimator = ESTIMATORS[config.rl.advantage]
  rows["advantages"], _ = estimator.estimate(rewards_b, rows["old_values"], rows["loss_mask"], config.rl)
  adv_b = rows["advantages"].sum(axis=1)
  for i in range(passes):
    state, _ = ppo_epochs(step, state, rows, rl_config=config.rl, batch_size=config.train.batch_size,
                          iteration=i + 1, place=scorers.place)
  delta, kl = sequence_logprob_change(scorers.policy, state.params, judge["rows"], judge["old"],
                                      scorers.place, config.train.batch_size)
  right = judge["rewards"] > 0
  trained, _ = sequence_logprob_change(scorers.policy, state.params, rows, rows["old_logprobs"],
                                       scorers.place, config.train.batch_size)
  by_sign = {name: f"{trained[pick].mean():.3f}" if pick.any() else "-"
             for name, pick in (("advantage > 0", adv_b > 0), ("< 0", adv_b < 0), ("= 0", adv_b == 0))}
  print("  Δlogp of the training replies with " + ", ".join(f"{k}: {v}" for k, v in by_sign.items()))
  return {"reward_is": weighted_reward(delta, judge["rewards"], config.rl.group_size), "kl": float(kl),
          "dlogp_right": float(delta[right].mean()), "dlogp_wrong": float(delta[~right].mean())}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--base", required=True, help="the SFT run RL starts from")
  parser.add_argument("--passes", type=int, default=1, help="epochs over the training rollouts per variant")
  parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
  args, overrides = parser.parse_known_args()
  overrides = [o.removeprefix("--config.") for o in overrides]
  base_cfg = load_config(rl_quickstart.__file__, [f"rl.base_workdir={args.base}", *overrides])
  config = variant_config(base_cfg, {})
  base_config, base = load_base_run(config, args.base, "rl.base_workdir")
  setup = build_train_setup(config, tokenizer_path(base_config, args.base))
  task, longest = rl.make_task(config, base_config, base.tokenizer)
  sampler = ReplySampler(base.graphdef, base.tokenizer, config.rollout, make_tools(),
                         cache_length(longest, config.rollout.max_reply_tokens))
  scorers, estimator = rl.make_scorers(config, setup, base, critic=False), ESTIMATORS[config.rl.advantage]
  started = time.time()
  sample = lambda iteration: collect(sampler, scorers, estimator, config.rl, config.train.seq_len, base.params,
                                     iteration_problems(task, config.rl, iteration), seed=iteration)
  train_rows, _, train_rewards = sample(1)
  judge_rows, _, judge_rewards = sample(10_001)  # other problems
  judge = {"rows": judge_rows, "old": judge_rows["old_logprobs"], "rewards": judge_rewards}
  print(f"rollouts in {time.time() - started:.0f} s; train reward {train_rewards.mean():.3f}, "
        f"judging reward {judge_rewards.mean():.3f} on {len(judge_rewards)} replies")
  print(f"{'variant':<28} {'reward (IS)':>12} {'Δlogp right':>12} {'Δlogp wrong':>12} {'KL/token':>10}")
  for name in args.variants:
    result = probe(variant_config(base_cfg, VARIANTS[name]), base, base_config, args.base,
                   (train_rows, train_rewards), judge, args.passes)
    print(f"{name:<28} {result['reward_is']:>12.3f} {result['dlogp_right']:>12.3f} "
          f"{result['dlogp_wrong']:>12.3f} {result['kl']:>10.4f}", flush=True)


if __name__ == "__main__":
  main()
