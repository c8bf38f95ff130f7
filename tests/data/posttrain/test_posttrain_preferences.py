"""Reward-model pairs from math problems: chosen is correct, rejected fails in the way its kind says."""
import collections

import pytest

from lmjax import chat
from lmjax.data.posttrain import math_problems as m
from lmjax.data.posttrain import preferences as p
from lmjax.data.tokenizer import Tokenizer


@pytest.mark.parametrize("level", sorted(m.LEVELS))
def test_chosen_is_correct_and_rejected_is_not(level):
  problems = m.generate_problems(150, level, seed=level)
  pairs = p.math_preference_pairs(problems, seed=0)
  kinds = collections.Counter(pair["kind"] for pair in pairs)
  assert set(kinds) == set(p.REJECTIONS) and min(kinds.values()) > 20
  for problem, pair in zip(problems, pairs):
    assert m.is_correct(pair["chosen"], problem.answer)
    assert not m.is_correct(pair["rejected"], problem.answer)
    assert pair["prompt"] == [{"role": "user", "content": problem.question}]
    chat.validate(pair["prompt"] + [pair["rejected"]])


def test_wrong_step_propagates_through_the_calculator():
  problems = [q for q in m.generate_problems(100, 3, seed=0) if len(q.steps) >= 3]
  pairs = [pair for pair in p.math_preference_pairs(problems, seed=1, kinds=("wrong_step",))]
  for pair in pairs:
    parts = pair["rejected"]["content"]
    calls = [(x["input"], parts[i + 1]["output"]) for i, x in enumerate(parts) if x["type"] == "tool_call"]
    chosen = [x["input"] for x in pair["chosen"]["content"] if x["type"] == "tool_call"]
    assert [e for e, _ in calls] != chosen  # some expression differs...
    for expression, output in calls:  # ...and every output is still the calculator's
      assert m.calculator_tool.compute(expression) == output
    assert m.extract_answer(m.reply_text(pair["rejected"])) == int(calls[-1][1])


def test_pairs_are_deterministic_and_render(tokens_workdir):
  problems = m.generate_problems(20, 2, seed=0)
  assert p.math_preference_pairs(problems, seed=3) == p.math_preference_pairs(problems, seed=3)
  tokenizer = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  for pair in p.math_preference_pairs(problems, seed=3):
    for reply in (pair["chosen"], pair["rejected"]):
      ids, mask = chat.render(pair["prompt"] + [reply], tokenizer)
      assert sum(mask) > 0

