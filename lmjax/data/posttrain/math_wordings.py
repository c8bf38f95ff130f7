"""The same math problem asked in other words: four wordings per template, no two sharing a sentence frame.

    in_wording(problem, 3).question  # the same numbers, steps and answer, in wording 3's sentences
    in_wordings(problems, (0, 1))    # problem i in wording (0, 1)[i % 2]

Wording 0 is each template's own (`math_problems.TEMPLATES`); wordings 1 to 3 rewrite its every sentence (verbs,
the question asked) and keep the numbers, in their order, the names and the items. So a run trained on some
wordings can be scored on one it never saw: by default SFT and RL train on wording 0 and the held-out set asks
in wording 3 (config.sft.math_wordings, config.math.wordings, config.math.heldout_wordings).
"""
import dataclasses
import re
from collections.abc import Sequence

from lmjax.data.posttrain.math_problems import Problem


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
