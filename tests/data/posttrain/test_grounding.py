"""The grounding sources: answers stated in the prompt, "I don't know" about invented entities, and neither
ever asks the evaluation's questions."""
from lmjax import chat
from lmjax.data.posttrain import grounding
from lmjax.data.posttrain.conversations import DONT_KNOW
from lmjax.data.posttrain.qa_facts import answer_matches
from lmjax.eval import abstention


def test_each_context_answer_stands_in_its_prompt_among_distractors():
  conversations = grounding.context_conversations(300, seed=0)
  assert len(conversations) == 300 and len({c[0]["content"] for c in conversations}) == 300
  for user, assistant in conversations:
    answer = assistant["content"].rstrip(".")
    assert answer_matches(user["content"], answer), (user, assistant)
  with_distractors = [c for c in conversations if c[0]["content"].count(".") > 1]
  assert len(with_distractors) > 150


def test_unknown_questions_are_about_invented_names_and_abstain():
  conversations = grounding.unknown_conversations(200, seed=0)
  assert all(c[1]["content"] == DONT_KNOW for c in conversations)
  assert all(any(s.capitalize() in c[0]["content"] for s in grounding.SYLLABLES) for c in conversations)


def test_no_training_question_is_an_evaluation_question_and_the_names_are_disjoint():
  trained = {c[0]["content"] for n in (500,) for c in
             grounding.context_conversations(n, 0) + grounding.unknown_conversations(n, 0)}
  unanswerable, answerable = abstention.make_questions(200, seed=0)
  assert not trained & {q.question for q in unanswerable + answerable}
  assert not set(grounding.NAMES) & set(abstention.FIRST_NAMES)
  assert not set(grounding.SYLLABLES) & set(abstention.SYLLABLES)


def test_the_sources_are_deterministic_and_follow_the_protocol():
  assert grounding.context_conversations(50, seed=3) == grounding.context_conversations(50, seed=3)
  assert grounding.context_conversations(50, seed=3) != grounding.context_conversations(50, seed=4)
  for conversation in grounding.unknown_conversations(50, 1) + grounding.context_conversations(50, 1):
    chat.validate(conversation)
