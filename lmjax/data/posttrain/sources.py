"""The SFT data sources a config can mix by weight: one loader per name, each returning conversations.

Add a source: one function `(sft_config) -> list[conversation]` and one entry in SOURCES.
"""
from lmjax.config import ConfigError
from lmjax.data import chat_pipeline
from lmjax.data.posttrain import conversations, grounding, math_problems, math_wordings, qa_facts, tool_conversations


def _file(c) -> list:
  return chat_pipeline.read_conversations(c.conversations) if c.conversations else []


def _math(c) -> list:
  problems = math_problems.generate_problems(c.math_problems, c.math_levels, seed=c.seed)
  worded = math_wordings.in_wordings(problems, c.math_wordings, len(math_problems.as_levels(c.math_levels)))
  return [math_problems.problem_conversation(p) for p in worded]


def _identity(c) -> list:
  return conversations.identity_conversations(c.identity_name, c.identity_creator, 200, seed=c.seed)


def _search(c) -> list:
  from lmjax.infer.tools.search import SearchIndex, make_search_tool
  index = SearchIndex.build(c.search_documents)
  return tool_conversations.search_conversations(qa_facts.qa_pairs(200, seed=c.seed), make_search_tool(index, k=1))


def _idk(c) -> list:
  if not c.idk_conversations:
    raise ConfigError("config.sft.mixture.idk > 0 but config.sft.idk_conversations is empty; set it to the "
                      "idk_conversations.jsonl that `lmjax probe` wrote")
  return chat_pipeline.read_conversations(c.idk_conversations)


SOURCES = {
    "file": _file,  # config.sft.conversations (JSONL)
    "chatterbot": lambda c: conversations.load_chatterbot(),  # ~2,000 real English dialogues (BSD)
    "math": _math,  # generated word problems solved with calculator calls
    "identity": _identity,  # who the assistant is
    "search": _search,  # factual questions answered with the search tool
    "idk": _idk,  # "I don't know" for questions the model got wrong when probed (`lmjax probe`)
    "context": lambda c: grounding.context_conversations(c.grounding_examples, seed=c.seed),  # answer from the prompt
    "unknown": lambda c: grounding.unknown_conversations(c.grounding_examples, seed=c.seed),  # invented entities
}


def load_sources(sft_config) -> dict[str, list]:
  """The conversations of every source with a positive weight in sft_config.mixture."""
  unknown = sorted(set(sft_config.mixture) - set(SOURCES))
  if unknown:
    raise ValueError(f"config.sft.mixture names unknown sources {unknown}; known: {', '.join(SOURCES)}")
  return {name: SOURCES[name](sft_config) for name, weight in sft_config.mixture.items() if weight > 0}
