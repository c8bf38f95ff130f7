"""Verifiable math word problems: a seeded generator, worked solutions that call the calculator, and the checker.

    problem = generate_problem(seed=7, level=1)
    problem.question  # "Emily buys 3 apples. Apples cost $2 each. How much does she spend?"
    problem_conversation(problem)  # [user question, assistant worked solution ending "Answer: 6"]
    is_correct("... Answer: 6", problem.answer)  # True: the RL verifier

A problem is a list of `Step`s, each one arithmetic operation whose arguments are numbers from the question or
the results of earlier steps (`Ref`). Keeping the steps symbolic is what lets `solution_message` fill every
tool output by actually running the calculator, and lets the reward-model data corrupt one step and propagate
the error to the end (see `preferences`). Division is written `//` and always exact, so every calculator
output and every answer is an integer.

Levels set the number of steps and the range of the numbers: level 1 is one or two steps on numbers up to 10,
easy enough for the tiny model; each level above adds steps and widens the range. A config's `math_levels`
(`math.levels`) is a tuple: a mix of levels in equal shares. `math_wordings` asks the same problems in other
wordings.
"""
import dataclasses
import random
import re
from collections.abc import Callable, Sequence

from lmjax import chat
from lmjax.infer.tools import calculator as calculator_tool

ANSWER_PREFIX = "Answer: "
OPS = ("+", "-", "*", "//")


@dataclasses.dataclass(frozen=True)
class Level:
  """How hard a problem is: the largest number in the question and how many item kinds/stages it has."""
  max_number: int
  stages: int  # 1, 2 or 3: each template adds roughly one or two steps per stage


LEVELS = {1: Level(max_number=10, stages=1), 2: Level(max_number=20, stages=2),
          3: Level(max_number=50, stages=3), 4: Level(max_number=200, stages=3)}


@dataclasses.dataclass(frozen=True)
class Ref:
  """The result of step `index` used as an argument of a later step."""
  index: int


@dataclasses.dataclass(frozen=True)
class Step:
  """One calculator call: `label` says what it computes, the expression joins the args with `op`."""
  label: str
  op: str
  args: tuple[int | Ref, ...]


@dataclasses.dataclass(frozen=True)
class Problem:
  """A word problem with its symbolic solution; `answer` is the value of the last step."""
  question: str
  steps: tuple[Step, ...]
  answer: int
  template_id: str
  level: int


def expression(step: Step, results: list[int]) -> str:
  """The calculator input of a step, with earlier results substituted: "3*2", "6+6"."""
  return step.op.join(str(results[a.index] if isinstance(a, Ref) else a) for a in step.args)


def evaluate(steps, calculator: Callable[[str], str] = calculator_tool.compute) -> list[tuple[str, str]]:
  """(expression, calculator output) of every step, in order; later steps read earlier outputs.

  `calculator` defaults to the calculator tool's in-process evaluator (the exact code the sandboxed tool runs
  in its worker processes, without the pipe round trip). An output that is not an integer stops the chain
  with a ValueError naming the step, since later steps could not substitute it.
  """
  results, out = [], []
  for i, step in enumerate(steps):
    expr = expression(step, results)
    output = calculator(expr)
    try:
      results.append(int(output))
    except ValueError:
      raise ValueError(f"step {i} ({step.label}): calculator({expr!r}) gave {output!r}, not an integer; "
                       "keep divisions exact and operands non-zero") from None
    out.append((expr, output))
  return out


# --- templates: (rng, level) -> (question, steps) ------------------------------------------------------------

NAMES = ("Emily", "Liam", "Ava", "Noah", "Mia", "Ethan", "Sofia", "Lucas", "Zoe", "Omar", "Priya", "Ben")
PRONOUNS = {"Emily": "she", "Ava": "she", "Mia": "she", "Sofia": "she", "Zoe": "she", "Priya": "she"}
ITEMS = ("apples", "oranges", "pencils", "notebooks", "cookies", "stickers", "bananas", "markers")
THINGS = ("marbles", "cards", "candies", "shells", "beads", "stamps")


def _pronoun(name: str) -> str:
  return PRONOUNS.get(name, "he")


def _n(rng: random.Random, level: Level, low: int = 2) -> int:
  return rng.randint(low, level.max_number)


def _shopping(rng, level):
  name, kinds = rng.choice(NAMES), rng.sample(ITEMS, level.stages)
  counts = [_n(rng, level) for _ in kinds]
  prices = [rng.randint(1, max(2, level.max_number // 2)) for _ in kinds]
  buys = " and ".join(f"{c} {k}" for c, k in zip(counts, kinds))
  costs = " and ".join(f"{k.capitalize() if i == 0 else k} cost ${p} each" for i, (k, p)
                       in enumerate(zip(kinds, prices)))
  steps = [Step(f"Cost of the {k}", "*", (c, p)) for c, k, p in zip(counts, kinds, prices)]
  if len(steps) > 1:
    steps.append(Step("Total cost", "+", tuple(Ref(i) for i in range(len(steps)))))
  question = f"{name} buys {buys}. {costs}. How much does {_pronoun(name)} spend in dollars?"
  return question, steps


def _sharing(rng, level):
  name, thing = rng.choice(NAMES), rng.choice(THINGS)
  she = _pronoun(name)
  if level.stages == 1:
    friends, each = rng.randint(2, min(level.max_number, 10)), _n(rng, level, 1)
    question = (f"{name} has {friends * each} {thing} and shares them equally among {friends} friends. "
                f"How many {thing} does each friend get?")
    return question, [Step("Each friend gets", "//", (friends * each, friends))]
  bags = []
  while not bags:  # draw until the total splits into bags of at least 2 (almost always the first draw)
    friends, each = rng.randint(2, 10), _n(rng, level, 1)
    kept = rng.randint(1, level.max_number) if level.stages >= 3 else 0
    total = friends * each + kept
    bags = [b for b in range(2, 13) if total % b == 0 and total // b >= 2]
  bags = rng.choice(bags)
  steps = [Step(f"Total {thing}", "*", (bags, total // bags))]
  if kept:
    steps.append(Step(f"{thing.capitalize()} left to share", "-", (Ref(0), kept)))
    reflexive = "herself" if she == "she" else "himself"
    shares = f"{she.capitalize()} keeps {kept} for {reflexive} and shares the rest"
  else:
    shares = f"{she.capitalize()} shares them"
  steps.append(Step("Each friend gets", "//", (Ref(len(steps) - 1), friends)))
  question = (f"{name} has {bags} bags with {total // bags} {thing} in each bag. {shares} equally among "
              f"{friends} friends. How many {thing} does each friend get?")
  return question, steps


def _rates(rng, level):
  name = rng.choice(NAMES)
  legs = [(rng.randint(2, level.max_number), rng.randint(1, min(level.max_number, 12)))
          for _ in range(min(level.stages, 2))]
  if len(legs) == 1:
    (speed, hours), = legs
    question = f"A train travels at {speed} miles per hour for {hours} hours. How many miles does it travel?"
    return question, [Step("Distance", "*", (speed, hours))]
  steps = [Step(f"Distance of part {i + 1}", "*", (s, h)) for i, (s, h) in enumerate(legs)]
  steps.append(Step("Total distance", "+", (Ref(0), Ref(1))))
  question = (f"{name} cycles at {legs[0][0]} miles per hour for {legs[0][1]} hours, then at {legs[1][0]} "
              f"miles per hour for {legs[1][1]} hours. How many miles does {_pronoun(name)} cycle in all?")
  if level.stages >= 3:
    goal = rng.randint(1, level.max_number) + sum(s * h for s, h in legs)
    steps.append(Step("Miles still to go", "-", (goal, Ref(2))))
    question = question.replace("How many miles does", f"The trip is {goal} miles long. How many miles does")
    question = question.replace(" cycle in all?", " still have to cycle?")
  return question, steps


def _ages(rng, level):
  name = rng.choice(NAMES)
  age, older = rng.randint(2, level.max_number), rng.randint(2, level.max_number)
  steps = [Step("Brother's age", "+", (age, older))]
  question = f"{name} is {age} years old. {name}'s brother is {older} years older. How old is the brother?"
  if level.stages >= 2:
    times = rng.randint(2, 4)
    steps.append(Step("Grandfather's age", "*", (Ref(0), times)))
    question = question.replace("How old is the brother?",
                                f"Their grandfather is {times} times as old as the brother. "
                                "How old is the grandfather?")
  if level.stages >= 3:
    years = rng.randint(2, 10)
    steps.append(Step(f"Grandfather's age in {years} years", "+", (Ref(1), years)))
    question = question.replace("How old is the grandfather?",
                                f"How old will the grandfather be in {years} years?")
  return question, steps


def _savings(rng, level):
  name = rng.choice(NAMES)
  weekly, weeks = rng.randint(1, level.max_number), rng.randint(2, min(level.max_number, 12))
  steps = [Step("Money saved", "*", (weekly, weeks))]
  has = ""
  if level.stages >= 2:
    start = rng.randint(1, level.max_number)
    steps.append(Step("Money in all", "+", (start, Ref(0))))
    has = f" {_pronoun(name).capitalize()} already has ${start}."
  question = (f"{name} saves ${weekly} every week for {weeks} weeks.{has} "
              f"How many dollars does {_pronoun(name)} have?")
  if level.stages >= 3:
    spent = rng.randint(1, weekly * weeks)
    steps.append(Step("Money left", "-", (Ref(1), spent)))
    question = question.replace(" How many dollars", f" Then {_pronoun(name)} spends ${spent}. How many dollars")
    question = question.replace("does she have?", "does she have left?").replace("does he have?",
                                                                                  "does he have left?")
  return question, steps


def _leftovers(rng, level):
  thing = rng.choice(("cookies", "muffins", "rolls", "cupcakes"))
  if level.stages == 1:
    made = rng.randint(3, level.max_number + 5)
    sold = rng.randint(1, made - 1)
    question = f"A baker makes {made} {thing} and sells {sold}. How many {thing} are left?"
    return question, [Step(f"{thing.capitalize()} left", "-", (made, sold))]
  trays, per_tray = rng.randint(2, min(level.max_number, 12)), rng.randint(2, level.max_number)
  box = rng.randint(2, min(12, trays * per_tray - 1)) if level.stages >= 3 else 1
  sold = trays * per_tray - box * rng.randint(1, (trays * per_tray - 1) // box)  # the rest fills whole boxes
  steps = [Step(f"{thing.capitalize()} baked", "*", (trays, per_tray)),
           Step(f"{thing.capitalize()} left", "-", (Ref(0), sold))]
  question = (f"A baker bakes {trays} trays of {thing} with {per_tray} on each tray and sells {sold}. "
              f"How many {thing} are left?")
  if level.stages >= 3:
    steps.append(Step("Boxes filled", "//", (Ref(1), box)))
    question = question.replace(f"How many {thing} are left?",
                                f"The rest are packed in boxes of {box}. How many boxes are filled?")
  return question, steps


TEMPLATES: dict[str, Callable] = {"shopping": _shopping, "sharing": _sharing, "rates": _rates,
                                  "ages": _ages, "savings": _savings, "leftovers": _leftovers}


def generate_problem(rng_or_seed: random.Random | int, level: int = 1, template_id: str | None = None) -> Problem:
  """A problem of `level` from a seed (deterministic) or a `random.Random` (advanced by the draw).

  The template is drawn from `TEMPLATES` unless `template_id` names one.
  """
  if level not in LEVELS:
    raise ValueError(f"level={level} is not a difficulty level; use one of {sorted(LEVELS)}")
  rng = rng_or_seed if isinstance(rng_or_seed, random.Random) else random.Random(rng_or_seed)
  if template_id is None:
    template_id = rng.choice(sorted(TEMPLATES))
  elif template_id not in TEMPLATES:
    raise ValueError(f"unknown math template {template_id!r}; use one of {', '.join(sorted(TEMPLATES))}")
  question, steps = TEMPLATES[template_id](rng, LEVELS[level])
  results = [int(output) for _, output in evaluate(steps)]
  return Problem(question=question, steps=tuple(steps), answer=results[-1], template_id=template_id,
                 level=level)


def generate_problems(n: int, levels: int | Sequence[int] = 1, seed: int = 0) -> list[Problem]:
  """`n` problems from one seeded stream, problem i of level levels[i % len(levels)] (one int: every problem
  of that level): the same (n, levels, seed) always gives the same list."""
  levels, rng = as_levels(levels), random.Random(seed)
  return [generate_problem(rng, levels[i % len(levels)]) for i in range(n)]


def as_levels(levels: int | Sequence[int]) -> tuple[int, ...]:
  """A level or a sequence of levels as a non-empty tuple; a level outside LEVELS is a ValueError."""
  levels = (levels,) if isinstance(levels, int) else tuple(levels)
  unknown = [level for level in levels if level not in LEVELS]
  if not levels or unknown:
    raise ValueError(f"math levels {levels}: use a non-empty tuple of levels from {sorted(LEVELS)}, e.g. (1, 2) "
                     "(config.sft.math_levels, config.rm.math_levels, config.dpo.math_levels, config.math.levels)")
  return levels


def solution_message(problem_or_steps, calculator: Callable[[str], str] = calculator_tool.compute) -> dict:
  """The worked solution as an assistant message: per step its label, a calculator call and its output,
  then a final line "Answer: N" with N the last output.

  Takes a Problem or a sequence of Steps (the reward-model data passes corrupted steps). Outputs come from
  running `calculator`, never from the generator's own arithmetic, so they are what the engine would insert.
  """
  steps = problem_or_steps.steps if isinstance(problem_or_steps, Problem) else problem_or_steps
  parts, before = [], ""
  for step, (expr, output) in zip(steps, evaluate(steps, calculator)):
    parts += [{"type": "text", "text": f"{before}{step.label}: "},
              {"type": "tool_call", "tool": "calculator", "input": expr},
              {"type": "tool_output", "output": output}]
    before = "\n"
  parts.append({"type": "text", "text": f"{before}{ANSWER_PREFIX}{int(output)}"})
  return {"role": "assistant", "content": parts}


def problem_conversation(problem: Problem, with_solution: bool = True, system: str | None = None) -> list[dict]:
  """[system?, user question, assistant worked solution]; without the solution it is an RL/eval prompt."""
  messages = [{"role": "system", "content": system}] if system else []
  messages.append({"role": "user", "content": problem.question})
  if with_solution:
    messages.append(solution_message(problem))
  return messages


_ANSWER = re.compile(r"answer\s*(?:is)?\s*[:=]\s*\$?\s*(-?\s*[\d,]*\d(?:\.\d+)?)", re.IGNORECASE)
_GROUPED = re.compile(r"-?\d{1,3}(?:,\d{3})+")


def extract_answer(text: str) -> int | None:
  """The integer after the last "Answer:" in `text`, or None if there is none or it is not an integer.

  Tolerant of case, spaces, a "$", thousands commas ("1,234") and a zero fraction ("12.0"); "1,23" (bad
  grouping) and "12.5" give None. The last occurrence counts, so a reply that revises itself is judged by its
  final word.
  """
  matches = _ANSWER.findall(text or "")
  if not matches:
    return None
  number = re.sub(r"\s", "", matches[-1])
  if "," in number:
    whole = number.split(".")[0]
    if not _GROUPED.fullmatch(whole):
      return None
    number = number.replace(",", "")
  value = float(number) if "." in number else int(number)
  if isinstance(value, float):
    return int(value) if value.is_integer() else None
  return value


def reply_text(reply) -> str:
  """The text the model wrote in a reply: a string, an assistant message, or a list of parts (text parts
  only, so a tool's output can never supply the answer)."""
  if isinstance(reply, str):
    return reply
  return chat.text_of(reply if isinstance(reply, dict) else {"content": reply})


def is_correct(reply, answer: int) -> bool:
  """The RL verifier: does the reply's final "Answer:" equal `answer`?"""
  return extract_answer(reply_text(reply)) == answer
