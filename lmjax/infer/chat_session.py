"""`lmjax chat`: a conversation with a trained model, each assistant turn one reply of the engine (a batch of
one), tool calls run and their outputs shown.

    reply = chat_reply(loaded_model, messages, sampling=SamplingParams(...), tools=make_tools())
"""
import dataclasses

from lmjax import chat
from lmjax.data.documents import first_undecodable
from lmjax.infer.context import cut_notice
from lmjax.infer.engine import Reply, chat_engine
from lmjax.infer.sampler import SamplingParams
from lmjax.infer.tools import TOOLS


def chat_reply(loaded, messages: list[dict], *, sampling: SamplingParams, tools=TOOLS, max_tool_calls: int = 4,
               max_reply_tokens: int = 512) -> Reply:
  """The assistant's next turn after `messages` (which end with a user turn), sampled with `sampling.seed`:
  the same reply as the engine gives that prompt and seed in any batch. A conversation longer than the
  model's context keeps its end (the reply's `dropped` says how many ids went)."""
  engine = chat_engine(loaded.graphdef, loaded.params, loaded.tokenizer, slots=1, sampling=sampling,
                       max_reply_tokens=max_reply_tokens, tools=tools, max_tool_calls=max_tool_calls,
                       context=loaded.context)
  [reply] = engine.generate([chat.render_prompt(messages, loaded.tokenizer)], [sampling.seed])
  return reply


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
  tools = make_tools(search_index=SearchIndex.build(search) if search else None)  # a bad file fails first
  loaded = load_model(config, workdir)
  sampling = sampling_params(config.sample, ())
  messages = [{"role": "system", "content": system}] if system else []
  print(f"chatting with {workdir} (step {loaded.step}); tools: {', '.join(sorted(tools))}; empty line to quit")
  read_line = read_line or input
  while True:
    try:
      line = read_line("you> ")
      not_utf8 = first_undecodable(line) is not None  # bytes kept as surrogates (a C locale's stdin)
    except EOFError:
      break
    except UnicodeDecodeError:  # under a UTF-8 locale
      not_utf8 = True
    if not_utf8:  # the session goes on
      print("(that line is not UTF-8 text; set the terminal's encoding to UTF-8 and type it again)")
      continue
    if not line.strip():
      break
    messages.append({"role": "user", "content": line})
    turn_sampling = dataclasses.replace(sampling, seed=sampling.seed + len(messages))
    reply = chat_reply(loaded, messages, sampling=turn_sampling, tools=tools)
    if reply.dropped:
      print(cut_notice(reply.dropped, loaded.context, "the conversation"))
    message = reply.message(loaded.tokenizer)
    messages.append(message)
    print(f"assistant> {format_reply(message)}")
  return messages
