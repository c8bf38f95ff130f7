"""The verifiable task RL trains on: generated math word problems, asked in the chat protocol, with reward 1
for a reply whose final "Answer: N" is right and 0 otherwise.

Held-out problems never appear among the training problems or among the problems the SFT run trained on
(regenerated from the SFT run's saved config; compared in the templates' own wording, so a problem reworded is
the same problem), and by default they are asked in a wording no training run uses (config.math.wordings and
sft.math_wordings train on wording 0, math.heldout_wordings asks in wording 3), so held-out accuracy measures
generalisation, not recall; they depend only on config.math (levels, heldout_seed, heldout_wordings), so runs
with different rl.seed, and `lmjax eval`, are scored on the same problems.
"""
import dataclasses
import itertools

import numpy as np

from lmjax import chat
from lmjax.data.posttrain import math_problems, math_wordings


@dataclasses.dataclass(frozen=True)
class MathTask:
  train: tuple[math_problems.Problem, ...]
  heldout: tuple[math_problems.Problem, ...]


def sft_questions(sft_config) -> set[str]:
  """The math questions an SFT run trained on, in the templates' own wording (none if its mixture left the
  math source out)."""
  if sft_config is None or sft_config.mixture.get("math", 0) <= 0:
    return set()
  problems = math_problems.generate_problems(sft_config.math_problems, sft_config.math_levels, sft_config.seed)
  return {p.question for p in problems}


def make_math_task(math_config, *, heldout_problems: int, train_problems: int = 0, seed: int = 0,
                   sft_config=None) -> MathTask:
  """`heldout_problems` problems of the levels math.levels (in turn) fixed by math.heldout_seed (the same for
  every seed, so runs compare), none of which the SFT run trained on, and `train_problems` training problems
  from `seed`, none held out; asked in math.heldout_wordings and math.wordings (in turn)."""
  levels, sft_seen = math_problems.as_levels(math_config.levels), sft_questions(sft_config)
  heldout = _interleaved([_heldout_of_level(level, math_config.heldout_seed, share, sft_seen)
                          for level, share in zip(levels, _shares(heldout_problems, len(levels)))])
  pool = math_problems.generate_problems(2 * train_problems, levels, seed=seed) if train_problems else []
  excluded = {p.question for p in heldout}
  train = [p for p in pool if p.question not in excluded][:train_problems]
  worded = lambda problems, wordings: tuple(math_wordings.in_wordings(problems, wordings, len(levels)))
  return MathTask(worded(train, math_config.wordings), worded(heldout, math_config.heldout_wordings))


def _heldout_of_level(level: int, seed: int, n: int, excluded: set[str]) -> list:
  """The first `n` distinct level-`level` problems of the held-out stream that the SFT run did not see; a
  prefix of the same list for a smaller n, so RL's smaller held-out check is part of the evaluation's."""
  heldout = _distinct(math_problems.generate_problems(50 * n, level, seed=seed), excluded, n)
  if len(heldout) < n:
    raise ValueError(f"only {len(heldout)} level-{level} problems differ from the SFT run's; ask for fewer "
                     "held-out problems (config.rl.heldout_problems or config.eval.math_problems)")
  return heldout


def _shares(n: int, parts: int) -> list[int]:
  """n split into `parts` near-equal counts, the larger ones first."""
  return [n // parts + (i < n % parts) for i in range(parts)]


def _interleaved(lists: list[list]) -> list:
  """Round robin over the lists (the first ones may be one longer): a prefix holds every level alike."""
  return [item for row in itertools.zip_longest(*lists) for item in row if item is not None]


def _distinct(problems, excluded: set[str], n: int) -> list:
  """The first `n` problems whose questions are not in `excluded` and not repeated."""
  seen, out = set(excluded), []
  for problem in problems:
    if problem.question not in seen and len(out) < n:
      seen.add(problem.question)
      out.append(problem)
  return out


def prompt_ids(problem: math_problems.Problem, tokenizer) -> list[int]:
  """The problem as a user turn, ready for the assistant's reply."""
  return chat.render_prompt(math_problems.problem_conversation(problem, with_solution=False), tokenizer)


def reward(reply, problem: math_problems.Problem, tokenizer) -> float:
  """1.0 if the reply's text (not a tool's output) ends with the right answer, else 0.0."""
  return float(math_problems.is_correct(reply.message(tokenizer), problem.answer))


def rewards(replies, problems, tokenizer) -> np.ndarray:
  """The reward of each reply; `problems` is one per problem, repeated per reply: len(replies) // len(problems)
  consecutive replies answer each problem."""
  per_problem = len(replies) // len(problems)
  return np.array([reward(reply, problems[i // per_problem], tokenizer) for i, reply in enumerate(replies)],
                  np.float32)
