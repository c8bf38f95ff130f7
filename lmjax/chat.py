"""The conversation protocol: a conversation → token ids + loss mask (SFT), a prompt (sampling, RL), and a
generated reply → an assistant message (engine, RL).

A conversation is a list of plain dicts, so datasets are JSONL:

    {"role": "system", "content": str}              optional, first only
    {"role": "user", "content": str}
    {"role": "assistant", "content": str | [part]}  a part is one of
        {"type": "text", "text": str}
        {"type": "tool_call", "tool": str, "input": str}
        {"type": "tool_output", "output": str}      directly after a tool_call part

Rendered, token by token (special tokens inserted by id; text never encodes to them):

    <|bos|>
    <|system_start|> text <|system_end|>
    <|user_start|> text <|user_end|>
    <|assistant_start|> text <|tool_call_start|> tool "\\n" input <|tool_call_end|>
                        <|tool_output_start|> output <|tool_output_end|> text <|assistant_end|>

A tool call's text is the tool name, a newline, then the input verbatim (it may hold newlines): the name is
everything before the first newline, so names may not contain whitespace. The loss mask is 1 exactly on what
the model must produce — the assistant's text, its tool calls with their start/end tokens, and
<|assistant_end|> — and 0 on the rest: BOS, system, user, the <|assistant_start|> the prompt supplies, and
tool outputs with their start/end tokens, which the engine inserts.
"""
import dataclasses
import functools

from lmjax.config import UserError

ROLES = ("system", "user", "assistant")
PART_TYPES = ("text", "tool_call", "tool_output")


class ProtocolError(UserError, ValueError):
  """An ill-formed conversation, with the index of the offending message and what to fix."""


@dataclasses.dataclass(frozen=True)
class ChatTokens:
  """The ids of the protocol's special tokens in one tokenizer."""
  bos: int
  eos: int
  pad: int
  system_start: int
  system_end: int
  user_start: int
  user_end: int
  assistant_start: int
  assistant_end: int
  tool_call_start: int
  tool_call_end: int
  tool_output_start: int
  tool_output_end: int

  @classmethod
  def from_tokenizer(cls, tokenizer) -> "ChatTokens":
    named = {f.name: tokenizer.special_id(f"<|{f.name}|>") for f in dataclasses.fields(cls)
             if f.name not in ("bos", "eos", "pad")}
    return cls(bos=tokenizer.bos_id, eos=tokenizer.eos_id, pad=tokenizer.pad_id, **named)

  @property
  def stops(self) -> tuple[int, ...]:
    """Where generation pauses: the reply's end, a tool call's end (run the tool, then go on), or <|eos|>."""
    return (self.assistant_end, self.tool_call_end, self.eos)


@functools.lru_cache(maxsize=16)
def chat_tokens(tokenizer) -> ChatTokens:
  """`ChatTokens` of a tokenizer, resolved once per tokenizer (Tokenizer is hashable by its path)."""
  return ChatTokens.from_tokenizer(tokenizer)


def _error(index: int, problem: str) -> ProtocolError:
  return ProtocolError(f"message {index}: {problem}")


def _validate_parts(index: int, content) -> None:
  if isinstance(content, str):
    return
  if not isinstance(content, list):
    raise _error(index, "assistant content must be a string or a list of parts, "
                 f"not {type(content).__name__}")
  for j, part in enumerate(content):
    where = f"part {j}"
    if not isinstance(part, dict):
      raise _error(index, f"{where} must be a dict with a 'type', not {type(part).__name__}")
    kind = part.get("type")
    if kind not in PART_TYPES:
      raise _error(index, f"{where} has unknown type {kind!r}; use one of {', '.join(PART_TYPES)}")
    fields = {"text": ("text",), "tool_call": ("tool", "input"), "tool_output": ("output",)}[kind]
    for field in fields:
      if not isinstance(part.get(field), str):
        got = type(part.get(field)).__name__
        raise _error(index, f"{where} ({kind}) needs a string {field!r}, got {got}")
    if kind == "tool_call" and (not part["tool"] or any(c.isspace() for c in part["tool"])):
      raise _error(index, f"{where} has tool name {part['tool']!r}; a tool name must be non-empty, "
                   "without whitespace")
    if kind == "tool_output" and (j == 0 or not isinstance(content[j - 1], dict)
                                  or content[j - 1].get("type") != "tool_call"):
      raise _error(index, f"{where} is a tool_output with no tool_call part directly before it")


def validate(messages) -> None:
  """Raises ProtocolError naming the first problem and its message index; returns None if all is well.

  Rules: roles are system/user/assistant; a system message only first; the conversation starts with system
  or user; user and assistant alternate, each assistant answering a user; contents are strings (assistant:
  or a list of parts); a tool_output part directly follows a tool_call part. Extra keys are ignored.
  """
  if not isinstance(messages, list) or not messages:
    raise ProtocolError(f"a conversation is a non-empty list of messages, got {messages!r:.80}")
  previous = None
  for i, message in enumerate(messages):
    if not isinstance(message, dict):
      raise _error(i, f"a message is a dict with 'role' and 'content', not {type(message).__name__}")
    role = message.get("role")
    if role not in ROLES:
      raise _error(i, f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if "content" not in message:
      raise _error(i, f"{role} message has no 'content'")
    if role == "system" and i != 0:
      raise _error(i, "a system message may only be the first message")
    if i == 0 and role == "assistant":
      raise _error(i, "the conversation must start with a system or user message, not assistant")
    if role == previous == "user":
      raise _error(i, "two user messages in a row; merge them or put an assistant reply between")
    if role == previous == "assistant":
      raise _error(i, "two assistant messages in a row; merge their parts into one message")
    if role == "assistant" and previous == "system":
      raise _error(i, "an assistant message must answer a user message, not follow the system message")
    if role == "assistant":
      _validate_parts(i, message["content"])
    elif not isinstance(message["content"], str):
      raise _error(i, f"{role} content must be a string, not {type(message['content']).__name__}")
    previous = role


def parts(message: dict) -> list[dict]:
  """An assistant message's content as its canonical parts: a list, adjacent text merged, empty text dropped.

  Canonical because text parts render as one run of tokens, so this is exactly what `parse_reply` returns.
  """
  content = message["content"]
  content = [{"type": "text", "text": content}] if isinstance(content, str) else content
  out = []
  for part in content:
    if part["type"] == "text":
      if not part["text"]:
        continue
      if out and out[-1]["type"] == "text":
        out[-1] = {"type": "text", "text": out[-1]["text"] + part["text"]}
        continue
    out.append(dict(part))
  return out


def text_of(message: dict) -> str:
  """The text parts of a message, joined: what the model wrote, never a tool call or a tool's output."""
  return "".join(p["text"] for p in parts(message) if p["type"] == "text")


def _tool_call_text(tool: str, tool_input: str) -> str:
  return f"{tool}\n{tool_input}"


def render(messages, tokenizer) -> tuple[list[int], list[int]]:
  """(ids, loss_mask) of a conversation, the same length; mask 1 on the tokens the model must produce."""
  validate(messages)
  t = chat_tokens(tokenizer)
  ids, mask = [t.bos], [0]

  def emit(new_ids, value):
    ids.extend(new_ids)
    mask.extend([value] * len(new_ids))

  for message in messages:
    role = message["role"]
    if role != "assistant":
      start, end = (t.system_start, t.system_end) if role == "system" else (t.user_start, t.user_end)
      emit([start, *tokenizer.encode(message["content"]), end], 0)
      continue
    emit([t.assistant_start], 0)
    for part in parts(message):
      if part["type"] == "text":
        emit(tokenizer.encode(part["text"]), 1)
      elif part["type"] == "tool_call":
        emit([t.tool_call_start, *tokenizer.encode(_tool_call_text(part["tool"], part["input"])),
              t.tool_call_end], 1)
      else:
        emit(render_tool_output(part["output"], tokenizer), 0)
    emit([t.assistant_end], 1)
  return ids, mask


def render_prompt(messages, tokenizer) -> list[int]:
  """Ids of a conversation ending in a user turn, then <|assistant_start|>: what the model continues."""
  validate(messages)
  if messages[-1]["role"] != "user":
    raise _error(len(messages) - 1, f"a prompt must end with a user message, not {messages[-1]['role']}")
  ids, _ = render(messages, tokenizer)
  return ids + [chat_tokens(tokenizer).assistant_start]


def render_tool_output(output: str, tokenizer) -> list[int]:
  """<|tool_output_start|> output <|tool_output_end|>: the ids the engine appends after a tool call."""
  t = chat_tokens(tokenizer)
  return [t.tool_output_start, *tokenizer.encode(output), t.tool_output_end]


def _split_call(text: str) -> tuple[str, str]:
  tool, _, tool_input = text.partition("\n")
  return tool.strip(), tool_input


def tool_call_pending(ids, tokenizer) -> tuple[str, str] | None:
  """(tool, input) if `ids` end with a complete tool call (<|tool_call_start|>…<|tool_call_end|>), else None.

  The engine calls this after each generated segment to know when to run a tool. The name may come back
  empty (the model wrote no name); the tool runner answers that with an error string.
  """
  t = chat_tokens(tokenizer)
  ids = [int(i) for i in ids]
  if not ids or ids[-1] != t.tool_call_end:
    return None
  for j in range(len(ids) - 2, -1, -1):
    if ids[j] == t.tool_call_start:
      return _split_call(tokenizer.decode(ids[j + 1:-1]))
    if tokenizer.sp.is_control(ids[j]):
      return None
  return None


def parse_reply(ids, tokenizer) -> dict:
  """The assistant message of generated ids (those after <|assistant_start|>), with canonical parts.

  The reply ends at the first <|assistant_end|> or <|eos|>; later ids are ignored and padding is dropped.
  Tolerant of truncation: without an end token everything is kept; an unterminated tool call becomes text
  (the literal "<|tool_call_start|>" then its text, so nothing is lost and it can never run); an
  unterminated tool output is kept as a tool_output part. Other special tokens out of place (say
  <|user_start|>) appear in the text by name.
  """
  t = chat_tokens(tokenizer)
  out: list[dict] = []
  run: list[int] = []
  state = "text"  # or "tool_call" / "tool_output": inside that span, collecting its ids in `run`

  def add_text(text):
    if text:
      if out and out[-1]["type"] == "text":
        out[-1]["text"] += text
      else:
        out.append({"type": "text", "text": text})

  for i in map(int, ids):
    if i in (t.assistant_end, t.eos):
      break
    if i == t.pad:
      continue
    if state == "text":
      if i == t.tool_call_start:
        add_text(tokenizer.decode(run))
        run, state = [], "tool_call"
      elif i == t.tool_output_start and out and out[-1]["type"] == "tool_call" and not run:
        state = "tool_output"
      elif tokenizer.sp.is_control(i):
        add_text(tokenizer.decode(run) + tokenizer.decode([i]))
        run = []
      else:
        run.append(i)
    elif state == "tool_call" and i == t.tool_call_end:
      tool, tool_input = _split_call(tokenizer.decode(run))
      out.append({"type": "tool_call", "tool": tool, "input": tool_input})
      run, state = [], "text"
    elif state == "tool_output" and i == t.tool_output_end:
      out.append({"type": "tool_output", "output": tokenizer.decode(run)})
      run, state = [], "text"
    else:
      run.append(i)
  if state == "tool_call":
    add_text(tokenizer.decode([t.tool_call_start]) + tokenizer.decode(run))
  elif state == "tool_output":
    out.append({"type": "tool_output", "output": tokenizer.decode(run)})
  else:
    add_text(tokenizer.decode(run))
  return {"role": "assistant", "content": out}
