"""Multiple choice by log-likelihood: an option's score is the sum of its tokens' log-probabilities, a model
taught the right options scores 1 (one taught the wrong ones 0, one that never saw them near chance), and bad
question files are clear errors."""
import json

import jax
import numpy as np
import pytest
from flax import nnx

from lmjax.config import ConfigError
from lmjax.eval import multiple_choice
from tests.eval.conftest import MC, chat_run, eval_config


def _mc_file(tmp_path, questions) -> str:
  path = tmp_path / "mc.jsonl"
  path.write_text("".join(json.dumps({"question": q.question, "options": list(q.options), "answer": q.answer,
                                      "kind": q.kind}) + "\n" for q in questions))
  return str(path)


def test_an_options_score_is_the_sum_of_its_token_logprobs(right_model):
  loaded = right_model[2]
  tok = loaded.tokenizer
  context = [tok.bos_id, *tok.encode("Question: Which book comes first?\nAnswer:")]
  option = tok.encode(" Genesis")
  pairs = [(context, option), ([tok.bos_id], [7])]
  score = multiple_choice.continuation_logprobs(loaded, pairs, batch_size=4)[0]
  ids = np.array([context + option])  # one unpadded row, scored by hand
  positions = np.arange(ids.shape[1])[None]
  logits = jax.jit(lambda p: nnx.merge(loaded.graphdef, p)(ids, positions, np.ones_like(ids)))(loaded.params)
  logits = np.asarray(logits[0], np.float64)
  shifted = logits - logits.max(-1, keepdims=True)
  logprobs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
  by_hand = float(sum(logprobs[len(context) - 1 + i, token] for i, token in enumerate(option)))
  assert len(option) > 1 and score == pytest.approx(by_hand, abs=1e-4)


def test_a_model_taught_the_right_options_scores_one_the_wrong_ones_zero(right_model, wrong_model, tmp_path):
  config = eval_config()
  config.eval.mc_file = _mc_file(tmp_path, MC)
  right = multiple_choice.evaluate_multiple_choice(config, chat_run(right_model[2], config))
  wrong = multiple_choice.evaluate_multiple_choice(config, chat_run(wrong_model[2], config))
  assert right["mc_accuracy"] == right["mc_accuracy_norm"] == 1.0
  assert right["mc_accuracy_animals"] == right["mc_accuracy_bible"] == 1.0
  assert wrong["mc_accuracy"] == 0.0
  assert right["mc_chance"] == 0.25 and right["mc_questions"] == 4


def test_a_model_that_never_saw_the_shipped_questions_scores_near_chance(right_model):
  config = eval_config()
  result = multiple_choice.evaluate_multiple_choice(config, chat_run(right_model[2], config))
  assert result["mc_questions"] == 120 and result["mc_chance"] == 0.25
  assert 0.1 <= result["mc_accuracy"] <= 0.4  # 0.25 ± 3.8 binomial standard errors of 120 questions


def test_shipped_questions_have_four_options_and_a_right_one():
  questions = multiple_choice.read_questions()
  assert {len(q.options) for q in questions} == {4}
  assert {q.kind for q in questions} == {"math", "next_book", "finish_verse"}
  assert all(len(set(q.options)) == 4 for q in questions)


@pytest.mark.parametrize("content, message", [
    ("", "holds no questions"),
    ('{"question": "Q?", "options": ["a"], "answer": 0}\n', "at least 2"),
    ('{"question": "Q?", "options": ["a", "b"], "answer": 2}\n', "index of the right option"),
    ('{"question": "Q?"}\n', "mc.jsonl:1"),
])
def test_an_empty_or_malformed_question_file_is_a_clear_error(tmp_path, content, message):
  (tmp_path / "mc.jsonl").write_text(content)
  with pytest.raises(ConfigError, match=message):
    multiple_choice.read_questions(str(tmp_path / "mc.jsonl"))
  with pytest.raises(ConfigError, match="matches no file"):
    multiple_choice.read_questions(str(tmp_path / "missing.jsonl"))
