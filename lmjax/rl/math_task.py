"""The verifiable task RL trains on: generated math word problems, asked in the chat protocol, with reward 1
for a reply whose final "Answer: N" is right and 0 otherwise.

Held-out problems never appear among the training problems or among the problems the SFT run trained on
(regenerated from the SFT run's saved config), so held-out accuracy measures generalisation, not recall; they
depend only on rl.heldout_seed, so runs with different rl.seed are scored on the same problems.
"""
import dataclasses

from lmjax import chat
from lmjax.data.posttrain import math_problems


@dataclasses.dataclass(frozen=True)
class MathTask:
  train: tuple[math_problems.Problem, ...]
  heldout: tuple[math_problems.Problem, ...]


def sft_questions(sft_config) -> set[str]:
  """The math questions an SFT run trained on (none if its mixture left the math source out)."""
  if sft_config is None or sft_config.mixture.get("math", 0) <= 0:
    return set()
  problems = math_problems.generate_problems(sft_config.math_problems, sft_config.math_level, sft_config.seed)
  return {p.question for p in problems}


def make_math_task(rl_config, sft_config=None) -> MathTask:
  """`rl.heldout_problems` problems fixed by rl.heldout_seed (the same for every rl.seed, so runs compare),
  none of which the SFT run trained on, and `rl.train_problems` training problems from rl.seed, none held out."""
  r = rl_config
  sft_seen = sft_questions(sft_config)
  stream = math_problems.generate_problems(50 * r.heldout_problems, r.math_level, seed=r.heldout_seed)
  heldout = _distinct(stream, sft_seen, r.heldout_problems)
  if len(heldout) < r.heldout_problems:
    raise ValueError(f"only {len(heldout)} level-{r.math_level} problems differ from the SFT run's; "
                     f"lower config.rl.heldout_problems={r.heldout_problems}")
  pool = math_problems.generate_problems(2 * r.train_problems, r.math_level, seed=r.seed)
  excluded = {p.question for p in heldout}
  train = [p for p in pool if p.question not in excluded][: r.train_problems]
  return MathTask(tuple(train), tuple(heldout))


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


def reward(rollout, problem: math_problems.Problem, tokenizer) -> float:
  """1.0 if the reply's text (not a tool's output) ends with the right answer, else 0.0."""
  return float(math_problems.is_correct(rollout.message(tokenizer), problem.answer))
