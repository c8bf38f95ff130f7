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
(`math.levels`) is a tuple: a mix of levels in equal shares. `in_wording` asks the same problem in one of four
wordings (the template's own and three rewrites with no sentence frame in common), so a run can be scored on
questions worded as it never saw them.
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


# --- wordings: the same problem asked in other sentence frames -----------------------------------------------
# Wording 0 is each template's own; wordings 1 to 3 rewrite its every sentence (verbs, the question asked) and
# keep the numbers, in their order, the names and the items. No two wordings share a sentence frame, so a run
# trained on some wordings can be scored on one it never saw (by default SFT and RL train on wording 0 and the
# held-out set asks in wording 3: config.sft.math_wordings, config.math.wordings, config.math.heldout_wordings).

WORDINGS: dict[str, tuple[tuple[str, tuple[str, str, str]], ...]] = {  # template: (pattern, its 3 rewrites)
    "shopping": (
        (r"^(\w+) buys ", (r"\1 wants ", r"\1 orders ", r"At the market \1 picks up ")),
        (r"([A-Za-z]+) cost \$(\d+) each", (r"\1 sell for $\2 each", r"\1 are priced at $\2 per item",
                                           r"\1 are $\2 apiece")),
        (r"How much does (she|he) spend in dollars\?", (r"How many dollars does \1 need?",
                                                        r"What does \1 pay in total, in dollars?",
                                                        "What is the bill in dollars?"))),
    "sharing": (
        (r" has (\d+) (\w+) and shares them equally among", (r" has \1 \2 and divides them fairly among",
                                                             r" collects \1 \2 and hands them out in equal parts to",
                                                             r" owns \1 \2 and splits them evenly between")),
        (r"shares (them|the rest) equally among", (r"divides \1 fairly among", r"hands \1 out in equal parts to",
                                                   r"splits \1 evenly between")),
        (r" has (\d+) bags with (\d+) (\w+) in each bag\.", (r" has \1 bags, each with \2 \3 inside.",
                                                             r" carries \1 bags of \2 \3.",
                                                             r" owns \1 bags holding \2 \3 apiece.")),
        (r"How many (\w+) does each friend get\?", (r"How many \1 does one friend end up with?",
                                                    r"What is the number of \1 for each friend?",
                                                    r"How many \1 will every friend receive?"))),
    "rates": (
        (r"^A train travels at (\d+) miles per hour for (\d+) hours\. How many miles does it travel\?", (
            r"A train moves at a speed of \1 miles per hour for \2 hours. What distance does it cover in miles?",
            r"At \1 miles per hour, a train keeps going for \2 hours. How many miles long is its trip?",
            r"Going \1 miles per hour, a train runs for \2 hours. How far does it go, in miles?")),
        (r"^(\w+) cycles at", (r"\1 bikes at", r"\1 pedals at", r"\1 rides a bike at")),
        (r"How many miles does (she|he) cycle in all\?", ("How many miles is that altogether?",
                                                          r"How far does \1 ride altogether, in miles?",
                                                          "What is the total distance in miles?")),
        (r"The trip is (\d+) miles long\. How many miles does (she|he) still have to cycle\?", (
            r"The journey is \1 miles in total. How many miles are left?",
            r"The route measures \1 miles. How many more miles must \2 ride?",
            r"The whole route is \1 miles. How many miles are still to ride?"))),
    "ages": (
        (r"^(\w+) is (\d+) years old\. \w+'s brother is (\d+) years older\.", (
            r"\1 is \2. The brother of \1 is \3 years older than \1.",
            r"\1 has an age of \2 years. \1's brother was born \3 years before \1.",
            r"\1 turned \2 this year. \1 has a brother who is \3 years older.")),
        (r"How old is the brother\?", ("How many years old is the brother?", "Find the brother's age.",
                                       "What is the brother's age?")),
        (r"Their grandfather is (\d+) times as old as the brother\.", (
            r"The grandfather is \1 times the brother's age.", r"Their grandpa's age is the brother's age times \1.",
            r"Their grandfather's age is \1 times the brother's.")),
        (r"How old is the grandfather\?", ("How many years old is the grandfather?", "Find the grandpa's age.",
                                           "What is the grandfather's age?")),
        (r"How old will the grandfather be in (\d+) years\?", (
            r"In \1 years, how old will the grandfather be?", r"Find the grandpa's age \1 years from today.",
            r"What will the grandfather's age be \1 years from now?"))),
    "savings": (
        (r"^(\w+) saves \$(\d+) every week for (\d+) weeks\.", (r"\1 saves $\2 a week, for \3 weeks.",
                                                                r"Every week \1 adds $\2 to a jar, for \3 weeks.",
                                                                r"\1 puts away $\2 each week for \3 weeks.")),
        (r"(She|He) already has \$(\d+)\.", (r"\1 had $\2 to begin with.", r"The jar already held $\2.",
                                            r"\1 started with $\2.")),
        (r"Then (she|he) spends \$(\d+)\.", (r"After that \1 spends $\2 on books.", r"Then \1 takes out $\2.",
                                            r"Later \1 uses $\2 on a gift.")),
        (r"How many dollars does (she|he) have(?: left)?\?", (r"How many dollars does \1 hold at the end?",
                                                              "How many dollars are in the jar?",
                                                              r"How much money, in dollars, does \1 have now?"))),
    "leftovers": (
        (r"^A baker makes (\d+) (\w+) and sells (\d+)\.", (r"A cook makes \1 \2 and then sells \3 of them.",
                                                          r"There are \1 \2 at a bake sale, and \3 get sold.",
                                                          r"A bakery bakes \1 \2, and \3 of them are sold.")),
        (r"^A baker bakes (\d+) trays of (\w+) with (\d+) on each tray and sells (\d+)\.", (
            r"A cook makes \1 trays of \2 holding \3 each, then sells \4.",
            r"A bake sale has \1 trays of \2 with \3 per tray, and \4 get sold.",
            r"A bakery fills \1 trays of \2, \3 per tray, and \4 of them are sold.")),
        (r"How many (\w+) are left\?", (r"How many \1 does the cook still have?", r"How many \1 are not sold?",
                                        r"How many \1 remain?")),
        (r"The rest are packed in boxes of (\d+)\. How many boxes are filled\?", (
            r"The cook puts the rest into boxes of \1. How many boxes does that fill?",
            r"The unsold ones fill boxes of \1. How many full boxes are there?",
            r"What is left goes into boxes of \1. How many boxes get filled?"))),
}
NUM_WORDINGS = 4  # the templates' own wording and three rewrites


def in_wording(problem: Problem, wording: int) -> Problem:
  """The same problem (numbers, steps, answer) asked in wording `wording` of its template (0: its own)."""
  if wording == 0:
    return problem
  question = problem.question
  for pattern, rewrites in WORDINGS[problem.template_id]:
    question = re.sub(pattern, rewrites[wording - 1], question)
  if _numbers(question) != _numbers(problem.question) or question == problem.question:
    raise ValueError(f"wording {wording} of {problem.template_id!r} lost a number or changed nothing: "
                     f"{problem.question!r} -> {question!r}; fix its rules in WORDINGS")
  return dataclasses.replace(problem, question=question)


def in_wordings(problems: Sequence[Problem], wordings: Sequence[int], levels: int = 1) -> list[Problem]:
  """Problem i in wording wordings[(i // levels) % len(wordings)]: with `levels` the number of levels that a
  stream mixes in turn, every level meets every wording."""
  wordings = as_wordings(wordings)
  return [in_wording(p, wordings[(i // levels) % len(wordings)]) for i, p in enumerate(problems)]


def as_wordings(wordings: Sequence[int]) -> tuple[int, ...]:
  """A non-empty tuple of wordings in range(NUM_WORDINGS), else a ValueError naming the config fields."""
  wordings = tuple(wordings)
  if not wordings or any(w not in range(NUM_WORDINGS) for w in wordings):
    raise ValueError(f"math wordings {wordings}: use a non-empty tuple of wordings from 0 to {NUM_WORDINGS - 1}, "
                     "e.g. (0, 1) (config.sft.math_wordings, config.math.wordings, config.math.heldout_wordings)")
  return wordings


def _numbers(text: str) -> list[str]:
  return re.findall(r"\d+", text)


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
