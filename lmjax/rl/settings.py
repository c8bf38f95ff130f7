"""RL's config: the checks that say what to change, the sizes derived from it, and its loss."""
import functools
import inspect

from lmjax import losses
from lmjax.config import ConfigError
from lmjax.rl.advantages import ESTIMATORS

REWARDS = ("verifier", "reward_model")


def rows_per_iteration(rl_config) -> int:
  return rl_config.prompts_per_iteration * rl_config.group_size


def score_batch(config) -> int:
  """Rows per scoring pass (the policy's and reference's log-probs, the critic's values, the reward model's
  scores): rl.score_batch, or the train step's micro-batch, whose full-vocabulary logits already fit."""
  return config.rl.score_batch or config.train.batch_size // config.train.grad_accum_steps


def total_updates(config) -> int:
  """Optimizer steps of the whole run: iterations × epochs × minibatches per iteration (at most, with
  rl.skip_uniform_groups; the LR schedule spans this many)."""
  r = config.rl
  return r.iterations * r.epochs * (rows_per_iteration(r) // config.train.batch_size)


def check_rl_config(config) -> None:
  """Raises ConfigError for RL settings that cannot work, saying what to change."""
  r, t = config.rl, config.train
  checks = [
      (r.advantage in ESTIMATORS, f"config.rl.advantage={r.advantage!r}; use one of {', '.join(ESTIMATORS)}"),
      (r.reward in REWARDS, f"config.rl.reward={r.reward!r}; use one of {', '.join(REWARDS)}"),
      (r.reward != "reward_model" or r.reward_model_workdir,
       "config.rl.reward='reward_model' needs config.rl.reward_model_workdir (an `lmjax rm` run)"),
      (r.group_size >= 2 or ESTIMATORS.get(r.advantage, ESTIMATORS["gae"]).uses_values,
       f"config.rl.group_size={r.group_size}: group-relative advantages need at least 2 samples per prompt"),
      (rows_per_iteration(r) % t.batch_size == 0,
       f"prompts_per_iteration×group_size={rows_per_iteration(r)} rollouts must split into minibatches of "
       f"train.batch_size={t.batch_size}; change one of them"),
      (r.score_batch >= 0 and rows_per_iteration(r) % score_batch(config) == 0,
       f"config.rl.score_batch={r.score_batch} must be 0 (the train micro-batch) or divide the "
       f"{rows_per_iteration(r)} rollouts of an iteration"),
      (r.iterations > 0 and r.epochs > 0, "config.rl.iterations and config.rl.epochs must be positive"),
      (not r.skip_uniform_groups or not ESTIMATORS.get(r.advantage, ESTIMATORS["gae"]).uses_values,
       f"config.rl.skip_uniform_groups needs a group advantage (group_relative, group_positive), not "
       f"rl.advantage={r.advantage!r}: a critic's advantages are not zero on a uniform group"),
      (config.rollout.max_reply_tokens < t.seq_len,
       f"config.rollout.max_reply_tokens={config.rollout.max_reply_tokens} leaves no room for the prompt in "
       f"train.seq_len={t.seq_len}"),
  ]
  for ok, message in checks:
    if not ok:
      raise ConfigError(message)


def with_derived_steps(config):
  """A copy of the config whose train.steps is the run's optimizer steps (the LR schedule's length)."""
  config = config.copy_and_resolve_references()
  config.train.steps = total_updates(config)
  return config


def policy_loss(rl_config):
  """(name, loss of `losses.LOSSES` with its hyperparameters bound from config.rl): `ppo_clip_value` when the
  advantage estimator learns a critic, else `ppo_clip`."""
  name = "ppo_clip_value" if ESTIMATORS[rl_config.advantage].uses_values else "ppo_clip"
  fn = losses.LOSSES[name].fn
  bound = {k: rl_config[k] for k in inspect.signature(fn).parameters if k in rl_config}
  return name, functools.partial(fn, **bound)
