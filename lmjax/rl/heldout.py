"""Held-out math accuracy of a policy, from explicit arguments: RL logs it, `lmjax eval` reports it.

pass@1 is the mean accuracy of `samples` replies per problem at rollout.temperature (the unbiased estimate),
pass@G whether any of them is right, greedy the accuracy of one greedy reply.
"""
import numpy as np

from lmjax.rl import math_task
from lmjax.rl.replies import ReplySampler


def heldout_replies(sampler: ReplySampler, params, problems, samples: int) -> tuple[list, list]:
  """(one greedy reply per problem, `samples` replies each at rollout.temperature)."""
  greedy = sampler.replies(params, problems, samples=1, temperature=0.0, seed=0)
  sampled = sampler.replies(params, problems, samples=samples, temperature=sampler.rollout.temperature, seed=1)
  return greedy, sampled


def heldout_accuracy(problems, greedy: list, sampled: list, tokenizer) -> dict:
  """`heldout_pass1`, `heldout_pass_at_g` and `heldout_greedy` of `heldout_replies`' output; with problems of
  several levels also `heldout_pass1_level<L>` and `heldout_greedy_level<L>` per level."""
  correct = math_task.rewards(sampled, problems, tokenizer).reshape(len(problems), -1)
  greedy_correct = math_task.rewards(greedy, problems, tokenizer)
  out = {"heldout_pass1": float(correct.mean()), "heldout_pass_at_g": float((correct.max(axis=1) > 0).mean()),
         "heldout_greedy": float(np.mean(greedy_correct))}
  levels = np.array([p.level for p in problems])
  if len(set(levels)) > 1:
    for level in sorted(set(levels)):
      out[f"heldout_pass1_level{level}"] = float(correct[levels == level].mean())
      out[f"heldout_greedy_level{level}"] = float(greedy_correct[levels == level].mean())
  return out


def evaluate_heldout(sampler: ReplySampler, params, problems, samples: int) -> dict:
  return heldout_accuracy(problems, *heldout_replies(sampler, params, problems, samples), sampler.tokenizer)
