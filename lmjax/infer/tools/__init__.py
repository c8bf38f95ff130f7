"""Tools the chat engine runs between generated segments: name -> function(input text) -> output text.

A tool never raises: bad input, refusals and failures come back as a string starting with "error:", which
the engine inserts as the tool output for the model to read (see `lmjax.chat.render_tool_output`).

`TOOLS` holds the tools that need no setup (the calculator). Tools that need state — the search tool needs
an index — are made by a factory, and `make_tools` returns a new table with them added, so nothing global is
ever mutated and two engines can hold different indexes:

    tools = make_tools(search_index=SearchIndex.build("lmjax/assets/corpus/*.jsonl.gz"))
    run_tool(tools, "calculator", "2**10")  # "1024"

To add a tool: write `def my_tool(text: str) -> str` in a module here (returning "error: ..." strings rather
than raising), add it to `TOOLS` (or to `make_tools` if it needs setup), and add a test in
tests/infer/test_tools.py. The model calls it by this name (see the tool-call format in `lmjax.chat`).
"""
from collections.abc import Callable

from lmjax.infer.tools import calculator, search

Tool = Callable[[str], str]
MAX_OUTPUT_CHARS = 2_000  # what any tool may put in the model's context

TOOLS: dict[str, Tool] = {
    "calculator": calculator.calculator,
}


def make_tools(search_index: search.SearchIndex | None = None, **extra: Tool) -> dict[str, Tool]:
  """A new table: `TOOLS`, plus "search" over `search_index` if given, plus `extra` tools by name."""
  tools = dict(TOOLS)
  if search_index is not None:
    tools["search"] = search.make_search_tool(search_index)
  tools.update(extra)
  return tools


def run_tool(tools: dict[str, Tool], name: str, tool_input: str) -> str:
  """The output of tool `name` on `tool_input`, capped at MAX_OUTPUT_CHARS; never raises.

  An unknown tool, or a tool that raises despite the contract, gives an "error: ..." string.
  """
  if name not in tools:
    return f"error: unknown tool {name!r}; the tools are {', '.join(sorted(tools))}"
  try:
    output = tools[name](tool_input)
  except Exception as e:  # noqa: BLE001 (a tool's bug must not stop the conversation)
    output = f"error: the {name} tool failed: {type(e).__name__}: {e}"
  if not isinstance(output, str):
    output = f"error: the {name} tool returned {type(output).__name__}, not text"
  if len(output) > MAX_OUTPUT_CHARS:
    output = f"{output[:MAX_OUTPUT_CHARS]}... (truncated: {len(output):,} characters in all)"
  return output
