"""Reward-model pairs: {"prompt": messages, "chosen": assistant message, "rejected": assistant message}.

From math problems: chosen is the correct worked solution; rejected is one of three failures a policy makes,
    "wrong_answer"  the right steps, then a final "Answer:" that is off,
    "wrong_step"    one step's expression has a wrong operand or operator; the calculator then computes it
                    faithfully and the error propagates through every later step to the final answer,
    "refusal"       an "I don't know" where an answer was due.
Pairs from JSONL files are read by `lmjax.data.pairs_pipeline.read_pairs`.
"""
import dataclasses
import random

from lmjax import chat
from lmjax.data.posttrain import math_problems
from lmjax.data.posttrain.conversations import DONT_KNOW

REJECTIONS = ("wrong_answer", "wrong_step", "refusal")


def correct_solution(problem) -> dict:
  """The chosen reply: a generated problem's calculator-worked solution, or a problem's own `solution` text."""
  if hasattr(problem, "steps"):
    return math_problems.solution_message(problem)
  return {"role": "assistant", "content": problem.solution}


def wrong_answer(problem, rng: random.Random) -> dict:
  """The correct solution whose final "Answer:" states a different number."""
  message = correct_solution(problem)
  off = problem.answer + rng.choice([-1, 1]) * rng.randint(1, max(2, abs(problem.answer) // 4))
  parts = chat.parts(message)
  head = parts[-1]["text"].rsplit(math_problems.ANSWER_PREFIX, 1)[0]
  parts[-1] = {"type": "text", "text": f"{head}{math_problems.ANSWER_PREFIX}{off}"}
  return {"role": "assistant", "content": parts}


def _mutate(step, rng: random.Random):
  """The step with one literal operand nudged by 1-3 (kept positive, so a divisor never becomes 0), or, if
  all its operands are earlier results, another operator (`//` floors, so a wrong divisor still gives an int).
  """
  literals = [i for i, a in enumerate(step.args) if isinstance(a, int)]
  if literals:
    i = rng.choice(literals)
    value = step.args[i] + rng.choice([-1, 1]) * rng.randint(1, 3)
    args = step.args[:i] + (value if value > 0 else step.args[i] + rng.randint(1, 3),) + step.args[i + 1:]
    return dataclasses.replace(step, args=args)
  return dataclasses.replace(step, op=rng.choice([op for op in ("+", "-", "*") if op != step.op]))


def wrong_step(problem, rng: random.Random) -> dict | None:
  """A worked solution with one wrong step, its error carried to the end; None if every mutation happens to
  reach the right final answer (a floor division can absorb a small error) or the problem has no steps."""
  if not hasattr(problem, "steps"):
    return None
  order = list(range(len(problem.steps)))
  rng.shuffle(order)
  for i in order:
    step = _mutate(problem.steps[i], rng)
    steps = problem.steps[:i] + (step,) + problem.steps[i + 1:]
    message = math_problems.solution_message(steps)
    if not math_problems.is_correct(message, problem.answer):
      return message
  return None


def refusal(problem, rng: random.Random) -> dict:
  return {"role": "assistant", "content": DONT_KNOW}


REJECTERS = {"wrong_answer": wrong_answer, "wrong_step": wrong_step, "refusal": refusal}


def math_preference_pairs(problems, seed: int = 0, kinds=REJECTIONS) -> list[dict]:
  """One pair per problem, the rejection kind drawn uniformly from `kinds`. Each pair also records its "kind".

  Problems are `math_problems.Problem`s, or any problem carrying its own `solution` text (experiments/
  gsm_symbolic.py's GSM8K problems); one without symbolic steps gets "wrong_answer" in place of "wrong_step"
  (as does a generated problem with no step that can go wrong).
  """
  rng = random.Random(seed)
  pairs = []
  for problem in problems:
    kind = rng.choice(kinds)
    rejected = REJECTERS[kind](problem, rng)
    if rejected is None:
      kind, rejected = "wrong_answer", wrong_answer(problem, rng)
    pairs.append({"prompt": [{"role": "user", "content": problem.question}],
                  "chosen": correct_solution(problem), "rejected": rejected, "kind": kind})
  return pairs
