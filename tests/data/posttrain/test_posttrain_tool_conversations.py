"""Search-tool conversations: grounded in the tool's real output, rendered by the protocol."""
from lmjax import chat
from lmjax.data.posttrain import qa_facts, tool_conversations
from lmjax.data.tokenizer import Tokenizer
from lmjax.infer.tools import make_tools, run_tool
from lmjax.infer.tools.search import SearchIndex, make_search_tool


def _tools():
  verses = [{"id": "v/1", "text": "Genesis 1\n\n3 And God said, Let there be light: and there was light."},
            {"id": "v/2", "text": "Exodus 1\n\n1 Now these are the names of the children of Israel."}]
  return make_tools(search_index=SearchIndex.build(verses))


def test_search_conversation_uses_the_tools_real_output():
  tools = _tools()
  qa = qa_facts.QA('Complete this verse from Genesis 1:3: "And God said, Let there be light: and there was ..."',
                   "light", "finish_verse", "v/1")
  conversation = tool_conversations.search_conversation(qa, lambda q: run_tool(tools, "search", q))
  call, output, answer = conversation[1]["content"]
  assert call == {"type": "tool_call", "tool": "search", "input": "And God said, Let there be light: and there was"}
  assert output["output"] == run_tool(tools, "search", call["input"])
  assert answer["text"] == "The answer is light."


def test_ungrounded_questions_are_dropped():
  tools = _tools()
  unanswerable = qa_facts.QA("Which book comes right after Jude?", "Revelation", "next_book", "x")
  counts = {}
  assert tool_conversations.search_conversations([unanswerable], lambda q: run_tool(tools, "search", q),
                                                 counts) == []
  assert counts == {"questions": 1, "kept": 0}


def test_shipped_bible_questions_mostly_ground_and_render(tokens_workdir):
  chapters = qa_facts.bible_chapters()[:60]
  index = SearchIndex.build([{"id": c.doc_id, "text": f"{c.book} {c.number}\n\n" + "\n".join(
      f"{i + 1} {v}" for i, v in enumerate(c.verses))} for c in chapters])
  sources = {c.doc_id for c in chapters}
  qas = [q for q in qa_facts.qa_pairs(200, kinds=("finish_verse",)) if q.source in sources]
  counts = {}
  conversations = tool_conversations.search_conversations(qas, make_search_tool(index, k=1), counts)
  assert counts["kept"] >= 0.8 * counts["questions"] > 0
  tokenizer = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  for conversation in conversations:
    ids, mask = chat.render(conversation, tokenizer)
    assert sum(mask) > 0
