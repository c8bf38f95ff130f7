"""The inference engine every caller shares: `lmjax chat` (one slot), `lmjax sample`, `lmjax probe`,
`lmjax eval`'s samples and abstention, and RL's rollouts.

A fixed number of slots decode together (`lmjax.infer.slots`). With continuous batching a slot whose reply
finishes takes the next waiting prompt at once; a slot whose reply calls a tool hands the call to a thread
pool and, when the output is back, has it prefilled after what its cache already holds and decodes on — the
other slots never wait. `continuous=False` is the plain static batch of the same engine (a batch of prompts
in, every reply finished, the next batch in), kept as the benchmark's reference.

One rule for every caller:
- a segment (from the prompt or a tool output to the next stop) is at most `sampling.max_new_tokens` tokens,
  a reply at most `max_reply_tokens`; a segment that ends without a stop id or a tool call ends the reply;
- the first `max_tool_calls` calls run; a later one gets an error output and the reply goes on;
- with the model's `context` given, a prompt and its reply fit it: the reply's budget shrinks to what the
  prompt leaves, a prompt past half the context keeps BOS and its end (`lmjax.infer.context.fit_prompt`),
  and the reply's `prompt` is what the model saw, its `dropped` how many ids were cut;
- a reply's randomness is keyed by its seed and the position it samples at (never by its slot or neighbours);
- each reply token is marked generated (sampled) or inserted (a tool's output): RL trains on the former only.

A caller that shows replies as they grow (`lmjax serve`'s streams) sets `steps_per_call` (tokens per device
call, default a whole segment) and passes `on_tokens(index, ids)`, called with a reply's ids so far after
each call and each tool output; it returns True to end that reply there (a stop string, a closed stream).

    engine = Engine(graphdef, params, slots=16, sampling=SamplingParams(max_new_tokens=64, temperature=1.0,
                    stop_ids=chat.chat_tokens(tok).stops), max_reply_tokens=256, tool_use=ToolUse(tok, tools))
    replies = engine.generate(prompts, seeds)
"""
import collections
import dataclasses
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import jax
import numpy as np

from lmjax import chat
from lmjax.infer import context as contexts
from lmjax.infer import slots as programs
from lmjax.infer.sampler import SamplingParams, knobs_of
from lmjax.infer.tools import run_tool


@dataclasses.dataclass(frozen=True)
class Reply:
  """One reply to one prompt: its ids after the prompt and, per id, whether the model sampled it."""
  prompt: tuple[int, ...]
  reply: tuple[int, ...]
  generated: tuple[bool, ...]
  tool_calls: int
  dropped: int = 0  # ids cut from the prompt's start to fit the model's context

  def message(self, tokenizer) -> dict:
    """The reply as an assistant message of the chat protocol."""
    return chat.parse_reply(self.reply, tokenizer)


@dataclasses.dataclass(frozen=True)
class ToolUse:
  """How replies call tools: the tokenizer that renders calls and outputs, the tool table, the call limit."""
  tokenizer: object
  tools: dict
  max_calls: int = 4
  threads: int = 4

  def limit_error(self) -> str:
    return f"error: no more tool calls in this reply (limit {self.max_calls})"


@dataclasses.dataclass
class _Row:
  """A reply in progress in one slot."""
  index: int
  seed: int
  limit: int  # its reply budget: max_reply_tokens, or less where the model's context is short
  cursor: int = 0  # the position its next token goes to
  ids: list = dataclasses.field(default_factory=list)
  generated: list = dataclasses.field(default_factory=list)
  segment: int = 0  # tokens sampled since the prompt or the last tool output
  calls: int = 0
  tool: Future | None = None  # a running tool call; the row decodes again once its output is in

  def reply(self, prompt, dropped: int) -> Reply:
    return Reply(tuple(prompt), tuple(self.ids), tuple(self.generated), self.calls, dropped)


def cache_length(longest_prompt: int, max_reply_tokens: int) -> int:
  """Positions a slot needs: prompt and reply, rounded up, plus one bucket of room for a prefill's padding."""
  return programs.round_up(longest_prompt + max_reply_tokens) + programs.BUCKET


class Engine:
  """Replies to many prompts through `slots` rows of one KV cache (see the module docstring)."""

  def __init__(self, graphdef, params, *, slots: int, sampling: SamplingParams, max_reply_tokens: int,
               tool_use: ToolUse | None = None, continuous: bool = True, length: int | None = None,
               context: int | None = None, steps_per_call: int | None = None):
    steps_per_call = steps_per_call or sampling.max_new_tokens
    if min(slots, max_reply_tokens, sampling.max_new_tokens, steps_per_call) < 1:
      raise ValueError(f"slots={slots}, max_reply_tokens={max_reply_tokens}, max_new_tokens="
                       f"{sampling.max_new_tokens} and steps_per_call={steps_per_call} must all be at least 1")
    self.graphdef, self.params, self.slots, self.context = graphdef, params, slots, context
    self.sampling, self.max_reply_tokens, self.tool_use = sampling, max_reply_tokens, tool_use
    self.continuous, self.length, self.steps_per_call = continuous, length, steps_per_call
    self.knobs = knobs_of(sampling, until_all=not continuous)
    self.prefills = 0  # prefill calls made (a tool round continues from the cache: one per output)
    self.decode_steps = 0  # decode steps run (each one token for every active slot)
    self.shared_prompts = 0  # prompts copied from a slot that holds the same prompt instead of prefilled

  def generate(self, prompts: list, seeds: list[int] | None = None, on_reply=None, *,
               reply_tokens: list[int] | None = None, on_tokens=None) -> list[Reply]:
    """A reply to every prompt (ids, each with at least one token); reply i samples with seeds[i] (default
    sampling.seed + i) and has a budget of reply_tokens[i] (default max_reply_tokens). `on_reply(i, reply)` is
    called as each reply finishes (a progress bar, a stream); `on_tokens` as in the module docstring."""
    seeds = [self.sampling.seed + i for i in range(len(prompts))] if seeds is None else list(seeds)
    budgets = [self.max_reply_tokens] * len(prompts) if reply_tokens is None else list(reply_tokens)
    if len(seeds) != len(prompts) or len(budgets) != len(prompts) or any(len(p) == 0 for p in prompts):
      raise ValueError("give one seed (and reply budget) per prompt, and every prompt at least one token (BOS)")
    if not prompts:
      return []
    fitted = [contexts.fit_prompt(p, self.context, budget) if self.context else contexts.Fitted(list(p), budget, 0)
              for p, budget in zip(prompts, budgets)]
    widest = max(fitted, key=lambda f: len(f.ids) + f.reply_tokens)
    length = self.length or cache_length(len(widest.ids), widest.reply_tokens)
    if len(widest.ids) + widest.reply_tokens + programs.BUCKET > length:
      raise ValueError(f"a prompt of {len(widest.ids)} tokens and a reply of {widest.reply_tokens} do not fit "
                       f"the engine's {length}-position cache; shorten the prompt or the reply budget")
    run = _Run(self, fitted, seeds, length, on_reply or (lambda index, reply: None), on_tokens or (lambda index, ids: False))
    with ThreadPoolExecutor(self.tool_use.threads if self.tool_use else 1) as pool:
      return run.until_done(pool)


class _Run:
  """The host side of one `Engine.generate` call: which reply each slot holds, and the device state."""

  def __init__(self, engine: Engine, fitted: list, seeds, length: int, on_reply, on_tokens):
    self.engine, self.fitted, self.seeds, self.on_reply, self.on_tokens = engine, fitted, seeds, on_reply, on_tokens
    self.cache, self.logits = programs.init_state(engine.graphdef, engine.params, engine.slots, length)
    self.rows: list[_Row | None] = [None] * engine.slots
    self.length = length
    self.holder: dict[tuple, tuple[int, jax.Array]] = {}  # prompt -> (a slot whose cache starts with it, logits)
    self.waiting = collections.deque(range(len(fitted)))
    self.replies: list[Reply | None] = [None] * len(fitted)

  def until_done(self, pool) -> list[Reply]:
    while self.waiting or any(self.rows):
      if self.engine.continuous or not any(self.rows):
        self.fill_free_slots()
      self.insert_finished_tool_outputs()
      decoding = [s for s, row in enumerate(self.rows) if row is not None and row.tool is None]
      if decoding:
        self.decode(decoding, pool)
      elif any(self.rows):
        wait([row.tool for row in self.rows if row is not None], return_when=FIRST_COMPLETED)
    return self.replies

  def fill_free_slots(self) -> None:
    for slot, row in enumerate(self.rows):
      if row is None and self.waiting:
        index = self.waiting.popleft()
        self.rows[slot] = _Row(index, self.seeds[index], self.fitted[index].reply_tokens)
        self.start_prompt(slot, tuple(self.fitted[index].ids))

  def start_prompt(self, slot: int, prompt: tuple) -> None:
    """Prefills the prompt into the slot, or copies it from a slot whose cache already starts with it."""
    self.holder = {p: held for p, held in self.holder.items() if held[0] != slot}  # overwritten here
    e = self.engine
    if prompt in self.holder:
      source, logits_v = self.holder[prompt]
      self.cache, self.logits = programs.copy_prefix(self.cache, self.logits, np.int32(source), np.int32(slot),
                                                     logits_v, programs.round_up(len(prompt)))
      self.rows[slot].cursor = len(prompt)
      e.shared_prompts += 1
      return
    self.prefill(slot, list(prompt))
    self.holder[prompt] = (slot, self.logits[slot])

  def prefill(self, slot: int, ids: list[int]) -> None:
    """Writes `ids` into the slot's cache at its cursor; its next token samples from the logits after them."""
    row = self.rows[slot]
    tokens = np.zeros((1, programs.round_up(len(ids))), np.int32)
    tokens[0, :len(ids)] = ids
    e = self.engine
    self.cache, self.logits = programs.prefill(e.graphdef, e.params, self.cache, self.logits, np.int32(slot),
                                               tokens, np.int32(row.cursor), np.int32(len(ids)))
    row.cursor += len(ids)
    e.prefills += 1

  def decode(self, decoding: list[int], pool) -> None:
    e, n = self.engine, self.engine.slots
    # A free slot writes (unread) at the cache's last position, past anything it holds (a shared prompt).
    active, cursor = np.zeros(n, bool), np.full(n, self.length - 1, np.int32)
    budget, seeds = np.ones(n, np.int32), np.zeros(n, np.uint32)
    for slot, row in enumerate(self.rows):
      if row is not None:
        cursor[slot], seeds[slot] = row.cursor, np.uint32(row.seed % 2**32)
    for slot in decoding:
      active[slot], budget[slot] = True, self.budget(self.rows[slot])
    out, self.cache, self.logits = programs.decode(e.graphdef, e.params, self.cache, self.logits, cursor, active,
                                                   budget, seeds, e.knobs, e.steps_per_call)
    out = np.asarray(jax.device_get(out))
    e.decode_steps += int((out >= 0).sum(axis=1).max())
    for slot in decoding:
      new = [int(t) for t in out[slot] if t >= 0]
      row = self.rows[slot]
      row.ids += new
      row.generated += [True] * len(new)
      row.cursor, row.segment = row.cursor + len(new), row.segment + len(new)
      if self.on_tokens(row.index, row.ids):
        self.finish(slot)
      else:
        self.after_tokens(slot, pool)

  def budget(self, row: _Row) -> int:
    """Tokens the row may still sample in this segment."""
    return min(self.engine.sampling.max_new_tokens - row.segment, row.limit - len(row.ids))

  def after_tokens(self, slot: int, pool) -> None:
    """Decides what a slot does next: decode on, run the tool it called, or finish its reply."""
    row, e = self.rows[slot], self.engine
    stopped = row.ids and row.ids[-1] in e.sampling.stop_ids
    if not stopped and self.budget(row) > 0:
      return  # the step ended for another slot's sake
    call = self.tool_call(row) if stopped else None
    if call is None or len(row.ids) >= row.limit:
      return self.finish(slot)
    row.calls += 1
    if row.calls > e.tool_use.max_calls:
      row.tool = Future()
      row.tool.set_result(e.tool_use.limit_error())
    else:
      row.tool = pool.submit(run_tool, e.tool_use.tools, *call)

  def tool_call(self, row: _Row):
    tool_use = self.engine.tool_use
    if tool_use is None or row.ids[-1] != chat.chat_tokens(tool_use.tokenizer).tool_call_end:
      return None
    return chat.tool_call_pending(row.ids, tool_use.tokenizer)

  def insert_finished_tool_outputs(self) -> None:
    for slot, row in enumerate(self.rows):
      if row is not None and row.tool is not None and row.tool.done():
        output = chat.render_tool_output(row.tool.result(), self.engine.tool_use.tokenizer)
        inserted = output[: row.limit - len(row.ids)]
        row.tool, row.segment = None, 0
        row.ids += inserted
        row.generated += [False] * len(inserted)
        if self.on_tokens(row.index, row.ids) or len(row.ids) >= row.limit:
          self.finish(slot)
        else:
          self.prefill(slot, inserted)

  def finish(self, slot: int) -> None:
    row = self.rows[slot]
    fitted = self.fitted[row.index]
    self.replies[row.index] = row.reply(fitted.ids, fitted.dropped)
    self.rows[slot] = None
    self.on_reply(row.index, self.replies[row.index])


def chat_engine(graphdef, params, tokenizer, *, slots: int, sampling: SamplingParams, max_reply_tokens: int,
                tools: dict, max_tool_calls: int = 4, continuous: bool = True, length: int | None = None,
                context: int | None = None, steps_per_call: int | None = None) -> Engine:
  """An engine for assistant replies in the chat protocol: it pauses at the protocol's stops and runs tools."""
  sampling = dataclasses.replace(sampling, stop_ids=chat.chat_tokens(tokenizer).stops)
  return Engine(graphdef, params, slots=slots, sampling=sampling, max_reply_tokens=max_reply_tokens,
                tool_use=ToolUse(tokenizer, tools, max_tool_calls), continuous=continuous, length=length,
                context=context, steps_per_call=steps_per_call)


def rollout_engine(graphdef, params, tokenizer, rollout_config, *, tools: dict, temperature: float = 0.0,
                   slots: int | None = None, continuous: bool = True, length: int | None = None,
                   context: int | None = None) -> Engine:
  """The chat engine as config.rollout sets it (segments, reply budget, tool calls, top-k, rollout.batch
  slots unless `slots`), at `temperature`: how RL's rollouts and the evaluations generate alike."""
  g = rollout_config
  sampling = SamplingParams(max_new_tokens=g.max_new_tokens, temperature=temperature, top_k=g.top_k)
  return chat_engine(graphdef, params, tokenizer, slots=slots or g.batch, sampling=sampling,
                     max_reply_tokens=g.max_reply_tokens, tools=tools, max_tool_calls=g.max_tool_calls,
                     continuous=continuous, length=length, context=context)


def generate(graphdef, params, prompts: list, sampling: SamplingParams, seeds: list[int] | None = None,
             slots: int | None = None, context: int | None = None) -> list[list[int]]:
  """Each prompt's new tokens, up to and including a stop id, at most `sampling.max_new_tokens` (no tools);
  row i samples with seeds[i] (default sampling.seed + i)."""
  return [list(reply.reply) for reply in continuations(graphdef, params, prompts, sampling, seeds, slots, context)]


def continuations(graphdef, params, prompts: list, sampling: SamplingParams, seeds: list[int] | None = None,
                  slots: int | None = None, context: int | None = None) -> list[Reply]:
  """`generate`'s replies whole (`lmjax sample`'s): with `context`, each says how much of its prompt was cut."""
  engine = Engine(graphdef, params, slots=slots or len(prompts), sampling=sampling,
                  max_reply_tokens=sampling.max_new_tokens, context=context)
  return engine.generate(prompts, seeds)
