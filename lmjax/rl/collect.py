"""One RL iteration's experience: sample replies to its problems, reward them, score them under the policy
(log-probs, and values when it has a critic) and the frozen reference, and estimate advantages — the rows
the PPO losses train on (`lmjax.rl.experience`)."""
import dataclasses
import time
from collections.abc import Callable

import numpy as np

from lmjax.rl import experience, math_task
from lmjax.rl.advantages import Estimator, uniform_groups
from lmjax.rl.replies import ReplySampler


@dataclasses.dataclass(frozen=True)
class Scorers:
  """The scoring passes over replies, `chunk` rows at a time, each chunk placed on the mesh by `place`."""
  policy: Callable  # (params, rows) -> (logprobs [b, t], values [b, t]: zeros without a value head)
  reference: Callable  # the same for the frozen reference (whose values are zeros)
  reference_params: object
  chunk: int
  place: Callable
  reward_model: tuple | None = None  # (score, params) of an `lmjax rm` run, when it gives the reward

  def reward_model_scores(self, replies, seq_len: int, pad_id: int) -> np.ndarray:
    """The reward model's score of each whole prompt + reply."""
    score, params = self.reward_model
    rows = experience.reward_model_rows(replies, seq_len, pad_id)
    (scores,) = experience.score_in_chunks(score, params, rows, self.chunk, self.place,
                                           keys=("tokens", "positions", "segment_ids", "targets", "loss_mask",
                                                 "last_index"))
    return scores.astype(np.float32)


def iteration_problems(task: math_task.MathTask, rl_config, iteration: int) -> list:
  """The `prompts_per_iteration` training problems of one iteration, drawn from (rl.seed, iteration)."""
  rng = np.random.default_rng([rl_config.seed, iteration])
  return [task.train[i] for i in rng.choice(len(task.train), rl_config.prompts_per_iteration, replace=False)]


def collect(sampler: ReplySampler, scorers: Scorers, estimator: Estimator, rl_config, seq_len: int, params,
            problems, seed: int) -> tuple[dict, dict, np.ndarray]:
  """(rows with old/ref log-probs, old values, advantages and returns; metrics; the reward of each row) of
  fresh replies to `problems`, `rl.group_size` each."""
  r, tok = rl_config, sampler.tokenizer
  started = time.perf_counter()
  replies = sampler.replies(params, problems, samples=r.group_size, temperature=sampler.rollout.temperature,
                            seed=seed)
  rollout_s = time.perf_counter() - started
  correct_b = math_task.rewards(replies, problems, tok)
  rewards_b = correct_b if scorers.reward_model is None else scorers.reward_model_scores(replies, seq_len,
                                                                                         tok.pad_id)
  rows = experience.sequence_rows(replies, seq_len, tok.pad_id)
  mask_bt = rows["loss_mask"]
  rows["old_logprobs"], values_bt = experience.score_in_chunks(scorers.policy, params, rows, scorers.chunk,
                                                               scorers.place)
  rows["ref_logprobs"], _ = experience.score_in_chunks(scorers.reference, scorers.reference_params, rows,
                                                       scorers.chunk, scorers.place)
  rows["old_values"] = (values_bt * mask_bt).astype(np.float32)
  advantages_bt, returns_bt = estimator.estimate(rewards_b, rows["old_values"], mask_bt, r)
  rows["advantages"], rows["returns"] = advantages_bt.astype(np.float32), returns_bt.astype(np.float32)
  metrics = {"reward": float(rewards_b.mean()), "correct": float(correct_b.mean()),
             "pass_at_group": float((correct_b.reshape(-1, r.group_size).max(axis=1) > 0).mean()),
             "uniform_groups": float(uniform_groups(rewards_b, r.group_size).mean()),
             "response_length": float(mask_bt.sum(axis=1).mean()),
             "tool_calls": float(np.mean([reply.tool_calls for reply in replies])), "rollout_s": rollout_s}
  explained = (experience.explained_variance(rows["old_values"], rows["returns"], mask_bt)
               if estimator.uses_values else float("nan"))
  if np.isfinite(explained):
    metrics["explained_variance"] = explained
  return rows, metrics, rewards_b
