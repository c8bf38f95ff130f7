"""The one rule for prompts longer than the model's context: keep BOS and the end, and say how much went.

A model's context is the `train.seq_len` of the run that trained it (RoPE has no position table, but the
model never saw a longer row). A prompt plus its reply must fit it, so nothing allocates beyond what the
model's length implies (a 100 KB chat prompt once asked for 33.6 GB). A reply keeps its budget as far as
the context allows, but a prompt always keeps at least half the context: a long reply budget never leaves
a long prompt no room, and a short prompt leaves its reply the rest.
"""
import dataclasses

from lmjax.config import UserError


def context_length(config) -> int:
  """The model's context in tokens: the sequence length its run trained with."""
  return config.train.seq_len


@dataclasses.dataclass(frozen=True)
class Fitted:
  """A prompt fitted to a context: its ids, the reply tokens left beside them, and the ids cut from its start."""
  ids: list
  reply_tokens: int
  dropped: int


def fit_prompt(ids: list[int], context: int, max_reply_tokens: int, keep_first: int = 1) -> Fitted:
  """`ids` and a reply of up to `max_reply_tokens` within `context`: the reply gets what the prompt (counted
  up to half the context) leaves, and a longer prompt keeps its first `keep_first` ids (BOS) and its end."""
  if context < 2:
    raise UserError(f"the model's context (train.seq_len={context}) leaves no room for a prompt and a reply; "
                    "use a run trained with a longer train.seq_len")
  reply = min(max_reply_tokens, context - min(len(ids), context // 2))
  room = context - reply
  if len(ids) <= room:
    return Fitted(list(ids), reply, 0)
  keep_first = min(keep_first, room - 1)
  return Fitted([*ids[:keep_first], *ids[len(ids) - (room - keep_first):]], reply, len(ids) - room)


def cut_notice(dropped: int, context: int, what: str = "the prompt") -> str:
  """The one line shown when `fit_prompt` cut something."""
  return (f"note: {what} is longer than the model's {context}-token context (train.seq_len); its first "
          f"{dropped:,} tokens after BOS were dropped and its end kept")
