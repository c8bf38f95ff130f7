"""What one RL iteration's update does to replies it did not train on: a cheap check of an RL recipe.

    python experiments/rl_update_probe.py --base runs/quickstart_sft [--config.optim.lr=2e-4 ...]

Samples one iteration's rollouts to train on and a second, independent set of problems and rollouts to judge
by; for each variant (optimizer, learning rate, advantages) it runs `--iterations` updates on the training
rollouts through the real train step, then re-scores the judging rollouts under the updated policy and prints
the importance-weighted estimate of their expected reward (self-normalised per problem: no new sampling), the
mean change of a reply's log-probability for right and for wrong replies, and the per-token KL it moved.
A recipe that does not raise the estimate on unseen problems will not raise held-out accuracy either.
"""
import argparse
import time

import jax
import numpy as np

from configs import rl_quickstart
from lmjax.config import load_config
from lmjax.rl import experience
from lmjax.train import rl
from lmjax.train.base_run import fresh_state, load_base_run
from lmjax.train.setup import build_train_setup, tokenizer_path
from lmjax.train.step import make_train_step

NO_WARMUP = {"schedule.warmup_steps": 0}
SGD = {"optim.name": "sgd", **NO_WARMUP}
VARIANTS = {
    "adam lr1e-4": {},
    "adam lr1e-4 b2=0.999": {"optim.b2": 0.999},
    "adam lr1e-4 positive": {"rl.advantage": "group_positive"},
    "adam lr1e-4 one update": {"train.batch_size": 256, "train.grad_accum_steps": 4, **NO_WARMUP},
    "sgd lr0.03": {**SGD, "optim.lr": 0.03},
    "sgd lr0.1": {**SGD, "optim.lr": 0.1},
    "sgd lr0.3": {**SGD, "optim.lr": 0.3},
    "sgd lr0.03 positive": {**SGD, "optim.lr": 0.03, "rl.advantage": "group_positive"},
    "sgd lr0.1 positive": {**SGD, "optim.lr": 0.1, "rl.advantage": "group_positive"},
    "sgd lr0.1 unscaled": {**SGD, "optim.lr": 0.1, "rl.scale_advantages": False},
    "adam lr3e-5 const": {"optim.lr": 3e-5, **NO_WARMUP},
    "sgd lr1": {**SGD, "optim.lr": 1.0},
    "sgd lr3": {**SGD, "optim.lr": 3.0},
    "sgd lr3 positive": {**SGD, "optim.lr": 3.0, "rl.advantage": "group_positive"},
    "sgd lr10": {**SGD, "optim.lr": 10.0},
}


def variant_config(base, overrides: dict):
  config = base.copy_and_resolve_references()
  for key, value in overrides.items():
    section, field = key.split(".")
    config[section][field] = value
  return rl.with_derived_steps(config)


def sequence_logprob_change(score, params, rows, old_logprobs, place, chunk):
  """Per reply: Σ over its sampled tokens of log π_new − log π_old, and the mean per-token KL estimate."""
  (new,) = experience.score_in_chunks(score, params, rows, chunk, place)
  mask = rows["loss_mask"]
  delta = ((new - old_logprobs) * mask).sum(axis=1)
  kl = (0.5 * (new - old_logprobs) ** 2 * mask).sum() / mask.sum()
  return delta, kl


def weighted_reward(delta_b, rewards_b, group_size):
  """Expected reward under the new policy, estimated from the old policy's replies, per-problem normalised."""
  w = np.exp(delta_b - delta_b.max()).reshape(-1, group_size)
  return float(((w * rewards_b.reshape(-1, group_size)).sum(1) / w.sum(1)).mean())


def probe(config, variant: dict, base, base_config, base_dir, train_rows, judge, iterations: int) -> dict:
  setup = build_train_setup(config, tokenizer_path(base_config, base_dir))
  actors = rl.make_actors(config, setup, base_config, base, critic=False)
  step = make_train_step(setup.graphdef, rl.policy_loss(config.rl)[1], setup.optimizer, setup.shardings,
                         batch_sharding=setup.batch_sharding, grad_accum_steps=config.train.grad_accum_steps,
                         lr_schedule=setup.schedule)
  state = fresh_state(setup, base.params)
  rows, metrics = train_rows
  rows = dict(rows)
  estimator = rl.advantage_estimators.ESTIMATORS[config.rl.advantage]
  adv_b = np.asarray(estimator(rows.pop("rewards"), config.rl.group_size, scale=config.rl.scale_advantages))
  rows["advantages"] = (adv_b[:, None] * rows["loss_mask"]).astype(np.float32)
  for i in range(iterations):
    state, _ = rl.update(actors, step, state, rows, i + 1)
  delta, kl = sequence_logprob_change(actors.score_policy, state.params, judge["rows"], judge["old"],
                                      actors.place, 64)
  right = judge["rewards"] > 0
  trained, _ = sequence_logprob_change(actors.score_policy, state.params, rows, rows["old_logprobs"],
                                       actors.place, 64)
  print(f"  on the training replies: Δlogp right {trained[adv_b > 0].mean():.3f}, "
        f"wrong {trained[adv_b < 0].mean():.3f}, zero-advantage {trained[adv_b == 0].mean():.3f}")
  return {"reward_is": weighted_reward(delta, judge["rewards"], config.rl.group_size),
          "dlogp_right": float(delta[right].mean()), "dlogp_wrong": float(delta[~right].mean()), "kl": float(kl)}


captured_rewards = []
_rewards_of = rl.rewards_of


def _capturing_rewards_of(*args):
  captured_rewards.append(_rewards_of(*args))
  return captured_rewards[-1]


rl.rewards_of = _capturing_rewards_of  # collect() keeps per-reply rewards to itself; the probe needs them


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--base", required=True, help="the SFT run RL starts from")
  parser.add_argument("--iterations", type=int, default=1, help="updates on the same rollouts per variant")
  parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
  args, overrides = parser.parse_known_args()
  base_cfg = load_config(rl_quickstart.__file__, [f"rl.base_workdir={args.base}", *(o.removeprefix("--config.") for o in overrides)])
  config = variant_config(base_cfg, {})
  base_config, base = load_base_run(config, args.base, "rl.base_workdir")
  setup = build_train_setup(config, tokenizer_path(base_config, args.base))
  actors = rl.make_actors(config, setup, base_config, base, critic=False)
  started = time.time()
  samples = []
  for iteration in (1, 10_001):  # the second set: other problems, other seeds
    rows, metrics = rl.collect(actors, base.params, iteration, critic=False)
    samples.append(({**rows, "rewards": captured_rewards[-1]}, metrics))
  judge_rows = samples[1][0]
  judge = {"rows": judge_rows, "old": judge_rows["old_logprobs"], "rewards": judge_rows["rewards"]}
  print(f"rollouts in {time.time() - started:.0f} s; train reward {samples[0][1]['reward']:.3f}, "
        f"judging reward {judge['rewards'].mean():.3f} on {len(judge['rewards'])} replies")
  print(f"{'variant':<28} {'reward (IS)':>12} {'Δlogp right':>12} {'Δlogp wrong':>12} {'KL/token':>10}")
  for name in args.variants:
    variant = VARIANTS[name]
    result = probe(variant_config(base_cfg, variant), variant, base, base_config, args.base, samples[0], judge,
                   args.iterations)
    print(f"{name:<28} {result['reward_is']:>12.3f} {result['dlogp_right']:>12.3f} "
          f"{result['dlogp_wrong']:>12.3f} {result['kl']:>10.4f}", flush=True)


if __name__ == "__main__":
  main()
