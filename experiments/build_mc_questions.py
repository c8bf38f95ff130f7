"""Builds the shipped multiple-choice questions, lmjax/assets/eval/multiple_choice.jsonl (4 options each).

    python experiments/build_mc_questions.py [--per-kind 40] [--seed 2026]

Three kinds, from the shipped generators: `math` (a level-1 word problem, its answer among three plausible
wrong ones — see `wrong_answers`; none of the problems the quickstart SFT run trained on), `next_book` (which Bible book follows
another, among four books) and `finish_verse` (a verse's missing last word, among the last words of three
other verses). Rerunning with the same flags writes the same file.
"""
import argparse
import dataclasses
import json
import os
import random
import re

from lmjax.data.posttrain import math_problems, qa_facts
from lmjax.eval.multiple_choice import SHIPPED


def _record(question: str, answer: str, distractors: list[str], kind: str, rng: random.Random) -> dict:
  options = [answer, *distractors]
  rng.shuffle(options)
  return {"question": question, "options": options, "answer": options.index(answer), "kind": kind}


def wrong_answers(problem: math_problems.Problem, rng: random.Random) -> list[int]:
  """Three plausible wrong answers: the last step done with another operation, then numbers of the question,
  then near misses, so a model that only prefers round or familiar numbers gains little."""
  other_ops = []
  for op in math_problems.OPS:
    steps = problem.steps[:-1] + (dataclasses.replace(problem.steps[-1], op=op),)
    try:
      other_ops.append(int(math_problems.evaluate(steps)[-1][1]))
    except ValueError:  # an inexact division
      continue
  in_question = [int(x) for x in re.findall(r"\d+", problem.question)]
  near = [problem.answer + d for d in (1, -1, 2, -2, 10, -10)]
  out = []
  for group in (other_ops, in_question, near):
    rng.shuffle(group)
    for v in group:
      if v >= 0 and v != problem.answer and v not in out:
        out.append(v)
  return out[:3]


def math_questions(n: int, rng: random.Random, seed: int) -> list[dict]:
  seen = {p.question for p in math_problems.generate_problems(5000, 1, seed=0)}  # configs/sft_quickstart.py
  out, asked = [], set()
  for p in math_problems.generate_problems(50 * n, 1, seed=seed):
    if p.question in seen or p.question in asked or len(out) == n:
      continue
    asked.add(p.question)
    out.append(_record(p.question, str(p.answer), [str(v) for v in wrong_answers(p, rng)], "math", rng))
  return out


def next_book_questions(n: int, rng: random.Random) -> list[dict]:
  books = list(dict.fromkeys(c.book for c in qa_facts.bible_chapters()))
  out = []
  for i in rng.sample(range(len(books) - 1), n):
    others = rng.sample([b for b in books if b not in (books[i], books[i + 1])], 3)
    question = f"In the King James Bible, which book comes right after {books[i]}?"
    out.append(_record(question, books[i + 1], others, "next_book", rng))
  return out


def finish_verse_questions(n: int, rng: random.Random, seed: int) -> list[dict]:
  qas = qa_facts.qa_pairs(n, seed=seed, kinds=("finish_verse",))
  words = sorted({qa.answer for qa in qa_facts.qa_pairs(400, seed=seed + 1, kinds=("finish_verse",))})
  out = []
  for qa in qas:
    others = rng.sample([w for w in words if w.lower() != qa.answer.lower()], 3)
    out.append(_record(qa.question, qa.answer, others, "finish_verse", rng))
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--per-kind", type=int, default=40)
  parser.add_argument("--seed", type=int, default=2026)
  args = parser.parse_args()
  rng = random.Random(args.seed)
  records = (math_questions(args.per_kind, rng, args.seed) + next_book_questions(args.per_kind, rng)
             + finish_verse_questions(args.per_kind, rng, args.seed))
  os.makedirs(os.path.dirname(SHIPPED), exist_ok=True)
  with open(SHIPPED, "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in records)
  print(f"wrote {len(records)} questions to {SHIPPED}")


if __name__ == "__main__":
  main()
