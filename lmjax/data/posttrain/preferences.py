"""Reward-model pairs: {"prompt": messages, "chosen": assistant message, "rejected": assistant message}.

From math problems (generated, or GSM): chosen is the correct worked solution; rejected is one of three failures a policy makes,
    "wrong_answer"  the right steps, then a final "Answer:" that is off,
    "wrong_step"    one step's expression has a wrong operand or operator; the calculator then computes it
                    faithfully and the error propagates through every later step to the final answer,
    "refusal"       an "I don't know" where an answer was due.
From any JSONL file: `load_preference_jsonl` reads prompt/chosen/rejected as strings or protocol messages.
"""
import dataclasses
import json
import random

from lmjax import chat, fs
from lmjax.data.posttrain import math_problems
from lmjax.data.posttrain.conversations import DONT_KNOW

REJECTIONS = ("wrong_answer", "wrong_step", "refusal")


def correct_solution(problem) -> dict:
  """The chosen reply: a generated problem's calculator-worked solution, or a GSM problem's own solution."""
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

  Problems are `math_problems.Problem`s or `gsm_symbolic.GSMProblem`s; a GSM problem has no symbolic steps, so
  "wrong_step" falls back to "wrong_answer" for it (as for a generated problem with no step that can go wrong).
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


class PreferenceFormatError(ValueError):
  """A preference JSONL line that is not a valid pair; the message names the file, line and fix."""


def _as_prompt(value) -> list[dict]:
  if isinstance(value, str):
    return [{"role": "user", "content": value}]
  chat.validate(value)
  if value[-1]["role"] != "user":
    raise ValueError(f"a prompt must end with a user message, not {value[-1]['role']}")
  return value


def _as_reply(value) -> dict:
  if isinstance(value, str):
    return {"role": "assistant", "content": value}
  if not isinstance(value, dict) or value.get("role") != "assistant":
    raise ValueError(f"a reply is a string or an assistant message, got {value!r:.80}")
  chat.validate([{"role": "user", "content": ""}, value])
  return value


def parse_preference(record) -> dict:
  """A pair from a decoded JSON object: prompt (a string or messages ending in a user turn), chosen and
  rejected (strings or assistant messages), normalized to messages. Raises ValueError saying what is wrong."""
  if not isinstance(record, dict):
    raise ValueError(f"expected a JSON object with prompt/chosen/rejected, got {type(record).__name__}")
  missing = [k for k in ("prompt", "chosen", "rejected") if k not in record]
  if missing:
    raise ValueError(f"missing {', '.join(missing)} (have {', '.join(sorted(record)) or 'no keys'})")
  out = dict(record)
  for key, parse in (("prompt", _as_prompt), ("chosen", _as_reply), ("rejected", _as_reply)):
    try:
      out[key] = parse(record[key])
    except ValueError as e:
      raise ValueError(f"{key}: {e}") from None
  return out


def load_preference_jsonl(path: str) -> list[dict]:
  """All pairs of a JSONL file (blank lines skipped); the first bad line raises PreferenceFormatError
  naming `path:line`."""
  pairs = []
  with fs.open(path) as f:
    for number, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        pairs.append(parse_preference(json.loads(line)))
      except ValueError as e:  # json.JSONDecodeError and chat.ProtocolError are ValueErrors
        raise PreferenceFormatError(f"{path}:{number}: {e}; each line must be a JSON object with prompt "
                                    "(string or messages) and chosen/rejected (string or assistant message)"
                                    ) from None
  return pairs
