"""The math word-problem generator, its worked solutions and the answer checker (the RL verifier)."""
import random

import pytest

from lmjax import chat
from lmjax.data.posttrain import math_problems as m
from lmjax.data.tokenizer import Tokenizer
from lmjax.infer.tools import TOOLS


def _tool_calls(message):
  parts = message["content"]
  return [(p["input"], parts[i + 1]["output"]) for i, p in enumerate(parts) if p["type"] == "tool_call"]


def test_generator_is_deterministic_per_seed_and_varies_across_seeds():
  for level in m.LEVELS:
    assert m.generate_problems(20, level, seed=3) == m.generate_problems(20, level, seed=3)
    assert m.generate_problems(20, level, seed=3) != m.generate_problems(20, level, seed=4)
  assert m.generate_problem(11, 2) == m.generate_problem(random.Random(11), 2)


def test_every_template_appears_and_levels_grow_harder():
  for level in m.LEVELS:
    problems = m.generate_problems(300, level, seed=0)
    assert {p.template_id for p in problems} == set(m.TEMPLATES)
  steps = {level: max(len(p.steps) for p in m.generate_problems(200, level, seed=1)) for level in m.LEVELS}
  assert steps[1] <= 2 and steps[3] >= 3
  biggest = {level: max(p.answer for p in m.generate_problems(200, level, seed=1)) for level in (1, 4)}
  assert biggest[1] < biggest[4]


@pytest.mark.parametrize("level", sorted(m.LEVELS))
def test_worked_solution_ends_with_the_problems_answer(level):
  for problem in m.generate_problems(200, level, seed=level):
    message = m.solution_message(problem)
    calls = _tool_calls(message)
    assert len(calls) == len(problem.steps)
    assert calls[-1][1] == str(problem.answer)
    assert m.reply_text(message).endswith(f"Answer: {problem.answer}")
    assert m.is_correct(message, problem.answer)
    assert problem.answer >= 0


def test_tool_outputs_equal_the_sandboxed_calculators():
  problems = [m.generate_problem(seed, level) for level in m.LEVELS for seed in range(3)]
  calls = [call for problem in problems for call in _tool_calls(m.solution_message(problem))]
  for expression, output in calls:
    assert TOOLS["calculator"](expression) == output, expression


def test_later_steps_use_earlier_calculator_outputs():
  steps = (m.Step("a", "*", (3, 4)), m.Step("b", "+", (m.Ref(0), 1)))
  assert m.evaluate(steps, calculator=lambda e: {"3*4": "12", "12+1": "13", "99+1": "100"}[e]) == [
      ("3*4", "12"), ("12+1", "13")]
  assert m.evaluate(steps, calculator=lambda e: "99" if e == "3*4" else "100") == [("3*4", "99"), ("99+1", "100")]
  with pytest.raises(ValueError, match="step 0 .*not an integer"):
    m.evaluate(steps, calculator=lambda e: "2.5")


@pytest.mark.parametrize("text, expected", [
    ("Answer: 12", 12), ("answer:12", 12), ("The answer is: 12.", 12), ("Answer: $1,234", 1234),
    ("Answer:  -7 ", -7), ("Answer: 12.0", 12), ("Answer: 3\nAnswer: 5", 5), ("Cost: 3\nANSWER : 42 apples", 42),
    ("", None), ("The total is 12", None), ("Answer: twelve", None), ("Answer: 12.5", None),
    ("Answer: 1,23", None), ("Answer:", None),
])
def test_extract_answer(text, expected):
  assert m.extract_answer(text) == expected


def test_is_correct_reads_only_the_text_the_model_wrote():
  problem = m.generate_problem(5, 1)
  assert m.is_correct(f"Answer: {problem.answer}", problem.answer)
  assert not m.is_correct(f"Answer: {problem.answer + 1}", problem.answer)
  assert not m.is_correct("I don't know.", problem.answer)
  tool_says = {"role": "assistant", "content": [
      {"type": "tool_call", "tool": "calculator", "input": "1"},
      {"type": "tool_output", "output": f"Answer: {problem.answer}"}]}
  assert not m.is_correct(tool_says, problem.answer)


def test_unknown_level_and_template_are_errors():
  with pytest.raises(ValueError, match="level=9"):
    m.generate_problem(0, 9)
  with pytest.raises(ValueError, match="unknown math template 'nope'"):
    m.generate_problem(0, 1, template_id="nope")


def test_conversations_validate_and_render(tokens_workdir):
  tokenizer = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  for problem in m.generate_problems(30, 2, seed=0):
    conversation = m.problem_conversation(problem, system="Solve it.")
    ids, mask = chat.render(conversation, tokenizer)
    assert len(ids) == len(mask) and sum(mask) > 0
    prompt = m.problem_conversation(problem, with_solution=False)
    assert chat.render_prompt(prompt, tokenizer)[-1] == chat.chat_tokens(tokenizer).assistant_start


def test_a_mix_of_levels_alternates_and_a_bad_level_names_the_config_fields():
  mixed = m.generate_problems(6, (1, 2), seed=3)
  assert [p.level for p in mixed] == [1, 2, 1, 2, 1, 2]
  assert m.generate_problems(6, (1,), seed=3) == m.generate_problems(6, 1, seed=3)
  for bad in ((5,), ()):
    with pytest.raises(ValueError, match="config.math.levels"):
      m.generate_problems(2, bad)


