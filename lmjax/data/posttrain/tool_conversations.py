"""Tool-use conversations for SFT: a factual question answered by calling the search tool and reading its output.

    search = make_search_tool(SearchIndex.build("lmjax/assets/corpus/bible_kjv.jsonl.gz"), k=1)
    search_conversations(qa_facts.qa_pairs(200), search)
    # [[user 'Complete this verse from Genesis 1:3: "And God said, Let there be light: and there was ..."',
    #   assistant [search call 'And God said, ...', its output, 'The answer is light.']], ...]

The output is what the tool really returns, and a conversation is kept only when that output contains the
answer, so the model learns to answer from what it read, never to make an answer up after a search.
(Calculator use is taught by the worked math solutions of `math_problems`.)
"""
import re
from collections.abc import Callable

from lmjax import chat
from lmjax.data.posttrain.qa_facts import QA, answer_matches

_QUOTED = re.compile(r'"(.+?)(?:\s*\.\.\.)?"')


def search_query(question: str) -> str:
  """What to search for: the quoted passage of a question if it has one, else the whole question."""
  match = _QUOTED.search(question)
  return match.group(1) if match else question


def search_conversation(qa: QA, search: Callable[[str], str]) -> list[dict] | None:
  """[user question, assistant: search call, its output, "The answer is X."], or None if the output does not
  contain the answer."""
  query = search_query(qa.question)
  output = search(query)
  if not answer_matches(output, qa.answer):
    return None
  conversation = [{"role": "user", "content": qa.question},
                  {"role": "assistant", "content": [
                      {"type": "tool_call", "tool": "search", "input": query},
                      {"type": "tool_output", "output": output},
                      {"type": "text", "text": f"The answer is {qa.answer}."}]}]
  chat.validate(conversation)
  return conversation


def search_conversations(qas, search: Callable[[str], str], counts: dict | None = None) -> list[list[dict]]:
  """The grounded conversations of `qas`, in order; `counts` receives {"questions", "kept"}."""
  out = [c for c in (search_conversation(qa, search) for qa in qas) if c is not None]
  if counts is not None:
    counts.update(questions=len(qas), kept=len(out))
  return out
