"""Batched rollouts with tools: many replies generated together, each pausing at its tool calls.

Every round generates one segment for every unfinished reply; a reply whose segment ends in a tool call gets
the tool's output appended and goes on in the next round. Each reply token is marked generated (the policy
sampled it) or inserted (a tool's output): RL's loss mask is exactly the generated tokens, so the policy is
never credited or blamed for what a tool said.

    replies = rollout(graphdef, params, tok, prompts, sampling, tools=TOOLS)
"""
import dataclasses
from concurrent.futures import ThreadPoolExecutor

from lmjax import chat
from lmjax.infer.sampler import SamplingParams, generate
from lmjax.infer.tools import run_tool


@dataclasses.dataclass(frozen=True)
class Rollout:
  """One reply to one prompt: its ids after <|assistant_start|> and, per id, whether the policy sampled it."""
  prompt: tuple[int, ...]
  reply: tuple[int, ...]
  generated: tuple[bool, ...]
  tool_calls: int

  def message(self, tokenizer) -> dict:
    return chat.parse_reply(self.reply, tokenizer)


def _padded_size(active: int, total: int) -> int:
  """The next power of two ≥ `active` (at most `total`): few batch shapes, so few compilations."""
  size = 1
  while size < active:
    size *= 2
  return min(size, total)


def _run_tools(tools, calls: list[tuple[str, str]], threads: int) -> list[str]:
  """Each (tool, input)'s output; the sandboxed calculator runs in child processes, so threads overlap them."""
  if len(calls) <= 1 or threads <= 1:
    return [run_tool(tools, *call) for call in calls]
  with ThreadPoolExecutor(threads) as pool:
    return list(pool.map(lambda call: run_tool(tools, *call), calls))


def rollout(graphdef, params, tokenizer, prompts: list[list[int]], sampling: SamplingParams, *, tools,
            max_tool_calls: int = 4, max_reply_tokens: int = 256, tool_threads: int = 4) -> list[Rollout]:
  """A reply to every prompt, generated in rounds of `sampling.max_new_tokens` tokens at most.

  A reply ends at <|assistant_end|> or <|eos|>, at `max_reply_tokens`, or when it calls a tool for the
  (max_tool_calls + 1)-th time (that call is not run). Round r samples with seed `sampling.seed` and r, so
  the same inputs give the same replies.
  """
  special = chat.chat_tokens(tokenizer)
  replies: list[list[int]] = [[] for _ in prompts]
  generated: list[list[bool]] = [[] for _ in prompts]
  calls = [0] * len(prompts)
  active = list(range(len(prompts)))
  for round_index in range(max_tool_calls + 1):
    if not active:
      break
    rows = [list(prompts[i]) + replies[i] for i in active]
    rows += [rows[-1]] * (_padded_size(len(rows), len(prompts)) - len(rows))
    round_sampling = dataclasses.replace(sampling, stop_ids=special.stops,
                                         seed=sampling.seed * (max_tool_calls + 1) + round_index)
    segments = generate(graphdef, params, rows, round_sampling)
    pending = []
    for i, new in zip(active, segments):
      new = new[: max_reply_tokens - len(replies[i])]
      replies[i] += new
      generated[i] += [True] * len(new)
      call = chat.tool_call_pending(replies[i], tokenizer) if new and new[-1] == special.tool_call_end else None
      if call is not None and round_index < max_tool_calls and len(replies[i]) < max_reply_tokens:
        pending.append((i, call))
    outputs = _run_tools(tools, [call for _, call in pending], tool_threads)
    for (i, _), output in zip(pending, outputs):
      inserted = chat.render_tool_output(output, tokenizer)[: max_reply_tokens - len(replies[i])]
      replies[i] += inserted
      generated[i] += [False] * len(inserted)
      calls[i] += 1
    active = [i for i, _ in pending if len(replies[i]) < max_reply_tokens]
  return [Rollout(tuple(p), tuple(r), tuple(g), c) for p, r, g, c in zip(prompts, replies, generated, calls)]
