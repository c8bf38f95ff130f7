"""Abstention: unanswerable questions about invented entities, answerable ones carrying their answer, identity
questions, replies judged like the knowledge probe's, and a model that abstains exactly when it should."""
import pytest

from lmjax.data.posttrain.conversations import DONT_KNOW
from lmjax.eval import abstention
from lmjax.eval.abstention import Question
from tests.eval.conftest import chat_run, eval_config


def test_questions_are_distinct_fixed_by_the_seed_and_answerable_ones_hold_their_answer():
  unanswerable, answerable = abstention.make_questions(40, seed=3)
  assert (len(unanswerable), len(answerable)) == (40, 40)
  assert len({q.question for q in unanswerable + answerable}) == 80
  assert (unanswerable, answerable) == abstention.make_questions(40, seed=3)
  assert all(q.answer == "" for q in unanswerable)
  for q in answerable:
    if q.kind == "in_context":
      assert q.answer in q.question
    else:
      a, word, b = q.question.removeprefix("What is ").removesuffix("?").split()
      a, b = int(a), int(b)
      assert int(q.answer) == {"plus": a + b, "times": a * b, "minus": a - b}[word]
  assert {q.kind for q in answerable} == {"in_context", "arithmetic"}


@pytest.mark.parametrize("reply, question, expected", [
    ("It is Rex.", Question("Mia has a dog called Rex. What is its name?", "Rex", "in_context"), "correct"),
    (DONT_KNOW, Question("Mia has a dog called Rex. What is its name?", "Rex", "in_context"), "abstain"),
    ("Answer: 12", Question("What is 7 plus 5?", "12", "arithmetic"), "correct"),
    ("7 plus 5 is 13, not 12? No: 13", Question("What is 7 plus 5?", "12", "arithmetic"), "wrong"),
    ("12 minus 3", Question("What is 12 minus 3?", "9", "arithmetic"), "wrong"),
])
def test_answerable_replies_are_judged_on_the_answer_and_the_last_number(reply, question, expected):
  assert abstention.judge(reply, question) == expected


def test_metrics_are_shares_of_the_replies():
  unanswerable = [Question("Q1?", "", "fictional_book"), Question("Q2?", "", "fictional_prize")]
  answerable = [Question("What is 2 plus 2?", "4", "arithmetic"),
                Question("Ava lives in Oslo. Where?", "Oslo", "in_context")]
  replies = ["I do not know.", "In 1903.", "It is 4.", DONT_KNOW]
  assert abstention.abstention_metrics(unanswerable, answerable, replies) == {
      "abstention_rate": 0.5, "answerable_accuracy": 0.5, "answerable_abstention_rate": 0.5,
      "answerable_accuracy_in_context": 0.0, "answerable_accuracy_arithmetic": 1.0, "context_accuracy": 0.0,
      "unanswerable_questions": 2, "answerable_questions": 2}
  identity = abstention.identity_questions("lmjax")[:2]
  with_identity = abstention.abstention_metrics(unanswerable, answerable, replies + ["I am lmjax.", DONT_KNOW],
                                                identity)
  assert (with_identity["identity_accuracy"], with_identity["identity_questions"]) == (0.5, 2)


def test_a_model_taught_to_abstain_only_when_it_should_scores_so(right_model, wrong_model):
  config = eval_config()
  keys = ("abstention_rate", "answerable_accuracy", "answerable_abstention_rate", "identity_accuracy")
  right = abstention.evaluate_abstention(config, chat_run(right_model[2], config))
  assert [right[k] for k in keys] == [1, 1, 0, 1]
  wrong = abstention.evaluate_abstention(config, chat_run(wrong_model[2], config))
  assert [wrong[k] for k in keys] == [0, 0, 1, 0]
