"""experiments/gsm_symbolic.py: the GSM-Symbolic problems, their template variants, the split by template,
and reward-model pairs from them."""
import random

import pytest

from experiments import gsm_symbolic as g
from lmjax import chat
from lmjax.data.posttrain import math_problems, preferences
from lmjax.data.tokenizer import Tokenizer

TEMPLATES = g.load_templates()


def test_loads_over_a_hundred_problems_with_integer_answers():
  assert len(TEMPLATES) == 100 and len({t.id for t in TEMPLATES}) == 100
  problems = g.original_problems(TEMPLATES)
  assert len(problems) == 99  # one GSM8K answer, 3.5, is not an integer
  for problem in problems:
    assert isinstance(problem.answer, int)
    assert math_problems.is_correct(problem.solution, problem.answer)
    assert "<<" not in problem.solution and "####" not in problem.solution
  variants = g.generate_variants(TEMPLATES[:40], per_template=2, seed=0)
  assert len(problems) + len(variants) >= 100


def test_solution_format():
  assert g.gsm_solution("2*3 = <<2*3=6>>6 eggs\n#### 1,006") == ("2*3 = 6 eggs\nAnswer: 1006", 1006)
  assert g.gsm_solution("half\n#### 3.5") == ("half\nAnswer: 3.5", None)


def test_variants_are_seeded_integer_problems_that_agree_with_their_solution():
  replacements = g.load_replacements()
  for template in TEMPLATES[:30]:
    if template.id in ("gsm8k/43", "gsm8k/918", "gsm8k/410"):
      continue
    a = [g.generate_variant(template, random.Random(1), replacements) for _ in range(2)]
    assert a[0] == a[1]
    variant = a[0]
    assert variant.template_id == template.id and isinstance(variant.answer, int)
    assert math_problems.extract_answer(variant.solution) == variant.answer
    assert "{" not in variant.question and "{" not in variant.solution
  many = g.generate_variants(TEMPLATES[:10], per_template=5, seed=0)
  assert len({p.question for p in many}) > 40  # the questions really vary
  assert many == g.generate_variants(TEMPLATES[:10], per_template=5, seed=0)
  assert many != g.generate_variants(TEMPLATES[:10], per_template=5, seed=1)


def test_a_variant_respects_the_templates_conditions():
  template = g.Template(id="t/1", file="t.toml", question="", answer="", question_annotated=(
      "{name,Ann} splits {x,12} pies among {k,3} kids.\n#init:\n- name = sample(names)\n"
      "- $x = range(2, 50)\n- $k = range(2, 9)\n#conditions:\n- divides(x, k)\n- x > 3 * k\n#answer: x // k"),
      answer_annotated="Each gets {x}/{k} = <<{x}/{k}={x//k}>>{x//k}.\n#### {x//k}")
  for seed in range(50):
    p = g.generate_variant(template, seed, {"names": ["Ann", "Bo"]})
    x, k = [int(w) for w in p.question.split() if w.isdigit()]
    assert x % k == 0 and x > 3 * k and p.answer == x // k
    assert p.solution == f"Each gets {x}/{k} = {x // k}.\nAnswer: {x // k}"
  impossible = g.Template(**{**template.__dict__, "question_annotated": template.question_annotated.replace(
      "x > 3 * k", "x > 100")})
  with pytest.raises(ValueError, match="t/1 .*no draw in 50"):
    g.generate_variant(impossible, 0, {"names": ["Ann"]}, max_tries=50)


def test_broken_templates_are_skipped_and_counted():
  counts = {}
  broken = [t for t in TEMPLATES if t.id == "gsm8k/918"]
  assert g.generate_variants(broken, per_template=1, seed=0, counts=counts) == []
  assert counts == {"templates": 1, "failed": 1}


def test_split_by_template_is_disjoint_and_seeded():
  problems = g.original_problems(TEMPLATES) + g.generate_variants(TEMPLATES[:20], per_template=2, seed=0)
  train, test = g.split_by_template(problems, test_fraction=0.2, seed=0)
  assert len(train) + len(test) == len(problems)
  assert not {p.template_id for p in train} & {p.template_id for p in test}
  assert len({p.template_id for p in test}) == 20
  assert (train, test) == g.split_by_template(problems, 0.2, seed=0)
  assert test != g.split_by_template(problems, 0.2, seed=1)[1]
  with pytest.raises(ValueError, match="test_fraction=1"):
    g.split_by_template(problems, 1, seed=0)


def test_gsm_conversations_render(tokens_workdir):
  tokenizer = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  for problem in g.original_problems(TEMPLATES)[:20]:
    ids, mask = chat.render(g.gsm_conversation(problem), tokenizer)
    assert sum(mask) > 0
    chat.render_prompt(g.gsm_conversation(problem, with_solution=False), tokenizer)


def test_gsm_problems_give_pairs_too():
  problems = g.original_problems()[:60]
  pairs = preferences.math_preference_pairs(problems, seed=0)
  assert {pair["kind"] for pair in pairs} == {"wrong_answer", "refusal"}  # no symbolic steps to corrupt
  for problem, pair in zip(problems, pairs):
    assert pair["chosen"] == {"role": "assistant", "content": problem.solution}
    assert math_problems.is_correct(pair["chosen"], problem.answer)
    assert not math_problems.is_correct(pair["rejected"], problem.answer)
    if pair["kind"] == "wrong_answer":  # the same reasoning, only the final number changed
      head = math_problems.reply_text(pair["rejected"]).rsplit("Answer:", 1)[0]
      assert head == problem.solution.rsplit("Answer:", 1)[0]
