"""How a reply reads as it grows and once it is done: the text a client is sent (a chat reply's `content`,
a completion's `text`), a chat reply's protocol parts, where a stop string cuts it, and why it finished.

While a reply grows, only what can no longer change is shown: an open tool call or tool output waits for
its end token, a character split across byte pieces waits for its last byte, and the last few characters
wait while they could still begin a stop string. So every streamed text is a prefix of the final one, and a
stream's chunks add up to the reply that would have come back whole.
"""
import dataclasses

from lmjax import chat
from lmjax.infer.chat_session import format_reply

REPLACEMENT = "\ufffd"  # what a character cut between its byte pieces decodes to


@dataclasses.dataclass(frozen=True)
class Shown:
  text: str
  parts: list[dict] | None  # a chat reply's canonical parts (None for a completion)
  stopped: bool  # a stop string ended the reply


def settled_ids(ids: list[int], tokens: chat.ChatTokens) -> list[int]:
  """`ids` without an open tool call or tool output at the end (their start seen, their end not yet)."""
  for j in range(len(ids) - 1, -1, -1):
    if ids[j] in (tokens.tool_call_end, tokens.tool_output_end):
      return ids
    if ids[j] in (tokens.tool_call_start, tokens.tool_output_start):
      return ids[:j]
  return ids


def cut_at_stop(parts: list[dict], stops: tuple[str, ...]) -> tuple[list[dict], bool]:
  """(parts up to the first stop string in the model's text, whether one was found): the string and all
  after it go. Tool calls and outputs are never searched: a stop string ends what the model writes."""
  for n, part in enumerate(parts):
    if part["type"] != "text":
      continue
    found = [i for i in (part["text"].find(s) for s in stops) if i >= 0]
    if found:
      cut = part["text"][:min(found)]
      return parts[:n] + ([{"type": "text", "text": cut}] if cut else []), True
  return parts, False


class ReplyText:
  """A chat reply's or a completion's text (`chat_reply`), cut at the request's stop strings."""

  def __init__(self, tokenizer, *, chat_reply: bool, stops: tuple[str, ...] = ()):
    self.tokenizer, self.chat_reply, self.stops = tokenizer, chat_reply, stops
    self.tokens = chat.chat_tokens(tokenizer) if chat_reply else None

  def shown(self, ids, final: bool) -> Shown:
    """What a client may see of the reply `ids` (its ids after the prompt); `final`: the reply is done."""
    ids = [int(i) for i in ids]
    if self.chat_reply:
      message = chat.parse_reply(ids if final else settled_ids(ids, self.tokens), self.tokenizer)
      parts, stopped = cut_at_stop(message["content"], self.stops)
      text = format_reply({"role": "assistant", "content": parts})
    else:
      ids = ids[:-1] if ids and ids[-1] == self.tokenizer.eos_id else ids
      parts, (text_parts, stopped) = None, cut_at_stop([{"type": "text", "text": self.tokenizer.decode(ids)}],
                                                       self.stops)
      text = text_parts[0]["text"] if text_parts else ""
    if not (final or stopped):
      text = text.rstrip(REPLACEMENT)
      held = max((len(s) for s in self.stops), default=1) - 1
      text = text[:max(0, len(text) - held)]
    return Shown(text, parts, stopped)

  def finish_reason(self, reply_ids, stopped: bool) -> str:
    """"stop" where the model ended its reply (or a stop string did), "length" where the budget did."""
    ends = (self.tokens.assistant_end, self.tokens.eos) if self.chat_reply else (self.tokenizer.eos_id,)
    return "stop" if stopped or (reply_ids and reply_ids[-1] in ends) else "length"
