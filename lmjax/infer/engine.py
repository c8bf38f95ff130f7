"""The chat engine: generate an assistant reply, pausing at each tool call to run the tool and insert its
output, then continuing — the loop that gives a small model a calculator and a search engine.

    reply = chat_reply(loaded_model, messages, tools=make_tools(), sampling=SamplingParams(...))
"""
import dataclasses

from lmjax import chat
from lmjax.infer.sampler import SamplingParams, generate
from lmjax.infer.tools import TOOLS, run_tool


@dataclasses.dataclass(frozen=True)
class Reply:
  message: dict  # the assistant message: {"role": "assistant", "content": [parts]}
  ids: list[int]  # every token after <|assistant_start|>, tool outputs included
  tool_calls: int


def chat_reply(loaded, messages: list[dict], *, sampling: SamplingParams, tools=TOOLS,
               max_tool_calls: int = 4, max_total_tokens: int = 512) -> Reply:
  """The assistant's next turn after `messages` (which end with a user turn).

  Each segment is generated until <|assistant_end|>, <|tool_call_end|> or <|eos|>; after a tool call the
  tool's output (an error string if it refuses) is appended inside <|tool_output_*|> and generation resumes.
  After `max_tool_calls` calls, further calls get an error output instead of running.
  """
  tok = loaded.tokenizer
  special = chat.chat_tokens(tok)
  prompt = chat.render_prompt(messages, tok)
  segment_sampling = dataclasses.replace(sampling, stop_ids=special.stops)
  reply, calls = [], 0
  while len(reply) < max_total_tokens:
    segment_sampling = dataclasses.replace(segment_sampling, seed=sampling.seed + len(reply))
    [new] = generate(loaded.graphdef, loaded.params, [prompt + reply], segment_sampling)
    reply += new
    pending = chat.tool_call_pending(reply, tok)
    if not new or new[-1] != special.tool_call_end or pending is None:
      break
    calls += 1
    output = (run_tool(tools, *pending) if calls <= max_tool_calls
              else f"error: no more tool calls in this reply (limit {max_tool_calls})")
    reply += chat.render_tool_output(output, tok)
  return Reply(chat.parse_reply(reply, tok), reply, calls)


def format_reply(message: dict) -> str:
  """An assistant message as terminal text, tool calls and outputs marked."""
  lines = []
  for part in chat.parts(message):
    if part["type"] == "text":
      lines.append(part["text"])
    elif part["type"] == "tool_call":
      lines.append(f"[{part['tool']}] {part['input']}")
    else:
      lines.append(f"  → {part['output']}")
  return "\n".join(lines)


def run_chat(config, workdir: str, *, system: str | None, search: str | None, read_line=None) -> list[dict]:
  """`lmjax chat`: an interactive conversation with the latest checkpoint (empty line or EOF ends it)."""
  from lmjax.infer.load import load_model
  from lmjax.infer.sample import sampling_params
  from lmjax.infer.tools import make_tools
  from lmjax.infer.tools.search import SearchIndex
  loaded = load_model(config, workdir)
  tools = make_tools(search_index=SearchIndex.build(search) if search else None)
  sampling = sampling_params(config.sample, ())
  messages = [{"role": "system", "content": system}] if system else []
  print(f"chatting with {workdir} (step {loaded.step}); tools: {', '.join(sorted(tools))}; empty line to quit")
  read_line = read_line or input
  while True:
    try:
      line = read_line("you> ")
    except EOFError:
      break
    if not line.strip():
      break
    messages.append({"role": "user", "content": line})
    turn_sampling = dataclasses.replace(sampling, seed=sampling.seed + len(messages))
    reply = chat_reply(loaded, messages, sampling=turn_sampling, tools=tools)
    messages.append(reply.message)
    print(f"assistant> {format_reply(reply.message)}")
  return messages
