"""chatterbot-corpus, identity and "I don't know" conversations, and the knowledge-probing QA set."""
import pytest

from lmjax import chat
from lmjax.data.posttrain import conversations as c
from lmjax.data.posttrain import qa_facts
from lmjax.data.tokenizer import Tokenizer


def test_chatterbot_loads_over_a_thousand_english_conversations():
  counts = {}
  conversations = c.load_chatterbot(counts=counts)
  assert len(conversations) >= 1000 and counts["conversations"] == len(conversations)
  assert counts["files"] >= 10
  for conversation in conversations:
    chat.validate(conversation)
    assert conversation[-1]["role"] == "assistant"


def test_chatterbot_keeps_yaml_scalars_as_strings_and_drops_malformed(tmp_path):
  (tmp_path / "english").mkdir()
  (tmp_path / "english" / "x.yml").write_text(
      "conversations:\n- - Are you there?\n  - Yes\n- - alone\n- - 'a'\n  - {b: 1}\n"
      "- - one\n  - two\n  - three\n- - ''\n  - empty\n", encoding="utf-8")
  counts = {}
  conversations = c.load_chatterbot(data_dir=str(tmp_path), counts=counts)
  assert conversations == [
      [{"role": "user", "content": "Are you there?"}, {"role": "assistant", "content": "Yes"}],
      [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}]]
  assert counts == {"files": 1, "conversations": 2, "malformed": 3}
  with pytest.raises(FileNotFoundError, match="'klingon'"):
    c.load_chatterbot(languages=("klingon",), data_dir=str(tmp_path))


def test_identity_conversations_name_the_assistant_and_are_seeded():
  conversations = c.identity_conversations("Pip", "the lmjax authors", n=50, seed=1)
  assert len(conversations) == 50
  assert all("Pip" in conv[1]["content"] for conv in conversations)
  assert len({conv[0]["content"] for conv in conversations}) > 5
  assert conversations == c.identity_conversations("Pip", "the lmjax authors", n=50, seed=1)
  assert conversations != c.identity_conversations("Pip", "the lmjax authors", n=50, seed=2)


def test_refusal_conversation_uses_the_configured_abstention():
  assert c.refusal_conversation("Who?")[-1] == {"role": "assistant", "content": c.DONT_KNOW}
  conversation = c.refusal_conversation("Who?", abstention="No idea.", system="Be brief.")
  assert [m["role"] for m in conversation] == ["system", "user", "assistant"]
  assert conversation[-1]["content"] == "No idea."


def test_qa_pairs_are_distinct_known_facts():
  pairs = qa_facts.qa_pairs(200, seed=0)
  assert len({p.question for p in pairs}) == 200 and {p.kind for p in pairs} == set(qa_facts.KINDS)
  assert pairs == qa_facts.qa_pairs(200, seed=0) and pairs != qa_facts.qa_pairs(200, seed=1)
  chapters = {ch.doc_id: ch for ch in qa_facts.bible_chapters()}
  for p in pairs:
    assert p.answer and p.source in chapters
    if p.kind == "verse_count":
      assert int(p.answer) == len(chapters[p.source].verses)
    if p.kind == "verse_book":
      assert p.answer == chapters[p.source].book
  genesis = next(ch for ch in chapters.values() if (ch.book, ch.number) == ("Genesis", 1))
  assert genesis.verses[0] == "In the beginning God created the heaven and the earth."


def test_answer_matches_whole_words_only():
  assert qa_facts.answer_matches("It was the LIGHT.", "light")
  assert qa_facts.answer_matches("That is 3 John, I think", "3 John")
  assert not qa_facts.answer_matches("It was lightning", "light")
  assert not qa_facts.answer_matches("I don't know.", "light")


def test_every_builder_renders(tokens_workdir):
  tokenizer = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  conversations = (c.load_chatterbot()[:50] + c.identity_conversations("Pip", "me", 10, 0)
                   + [c.refusal_conversation(p.question) for p in qa_facts.qa_pairs(20)])
  for conversation in conversations:
    ids, mask = chat.render(conversation, tokenizer)
    assert len(ids) == len(mask) and sum(mask) > 0
