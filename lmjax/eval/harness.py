"""Any lmjax run as an lm-evaluation-harness model: `HarnessLM(loaded)` answers the harness's three requests.

- loglikelihood (context, continuation) -> (log p(continuation | context), whether greedy decoding yields it):
  the summed token log-probs of the model's forward, context left-truncated to the model's context
  (train.seq_len) as the harness's own models do;
- loglikelihood_rolling (text,) -> log p(text) from BOS: the text in disjoint windows of the context, each
  token predicted once (`lm_eval.utils.get_rolling_token_windows`);
- generate_until (context, gen_kwargs) -> text: the inference engine (`lmjax.infer.engine`), greedy unless
  do_sample, cut at the first `until` string; long contexts keep BOS and their end (`lmjax.infer.context`).

For a chat model (`chat_format`) the harness applies lmjax's chat protocol (`lmjax.chat`) as the chat template:
`apply_chat_template` renders the task's messages as `chat.render_prompt` does, written out as text with the
special tokens by name (`Tokenizer.decode`), and `tok_encode` reads those names back as the tokens, so the model
sees exactly the ids it was fine-tuned on; the reply stops at <|assistant_end|>.

Rows are scored `batch_size` at a time, each batch padded to one of a few lengths (powers of two from
MIN_ROW up to the context), so the scoring program compiles a bounded number of shapes. This module imports
lm_eval; only the harness task (lmjax.eval.harness_task) imports it, so `import lmjax` never does.
"""
import collections
import dataclasses
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from lm_eval.api.model import TemplateLM
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

from lmjax import chat
from lmjax.config import UserError
from lmjax.eval.multiple_choice import continuation_rows
from lmjax.infer import engine
from lmjax.infer.sampler import MAX_STOP_IDS, SamplingParams
from lmjax.losses import token_logprobs

MIN_ROW = 64  # the shortest padded row; longer ones double up to the model's context
DEFAULT_MAX_GEN_TOKS = 256  # the harness's default reply budget when a task sets no max_gen_toks


def row_length(tokens: int, context: int) -> int:
  """The padded length of a row of `tokens` inputs: the next power of two from MIN_ROW, at most `context`."""
  return min(max(MIN_ROW, 1 << max(tokens - 1, 0).bit_length()), context)


def truncate_left(context_ids: list[int], continuation_ids: list[int], context: int) -> tuple[list, list]:
  """(context ids, continuation ids) whose model input (all but the last id) fits `context` tokens: the
  context loses its start; the continuation is kept whole (an error if it alone does not fit)."""
  if len(continuation_ids) > context:
    raise UserError(f"a continuation of {len(continuation_ids)} tokens does not fit the model's "
                    f"{context}-token context (train.seq_len); use a model trained with a longer context")
  keep = context + 1 - len(continuation_ids)
  return context_ids[-keep:] if len(context_ids) > keep else context_ids, continuation_ids


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _score(graphdef, params, rows):
  """(log p(target) [b, t], whether the target is the argmax [b, t]) of continuation rows."""
  logits_btv = nnx.merge(graphdef, params)(rows["tokens"], rows["positions"], rows["segment_ids"])
  greedy_bt = jnp.argmax(logits_btv, axis=-1) == rows["targets"]
  return token_logprobs(logits_btv, rows["targets"]), greedy_bt


def score_pairs(loaded, pairs: list[tuple[list[int], list[int]]], batch_size: int) -> list[tuple[float, bool]]:
  """(summed log-prob, all tokens greedy) of each (context ids, continuation ids) pair, whose context plus
  continuation less one fits loaded.context. Scored longest first, `batch_size` rows of one padded length."""
  order = sorted(range(len(pairs)), key=lambda i: -sum(map(len, pairs[i])))
  out = [None] * len(pairs)
  for start in range(0, len(order), batch_size):
    chunk = order[start:start + batch_size]
    longest = sum(map(len, pairs[chunk[0]])) - 1
    rows = continuation_rows([pairs[i] for i in chunk], row_length(longest, loaded.context))
    full = {k: np.pad(v, [(0, batch_size - len(chunk)), (0, 0)]) for k, v in rows.items()}  # one shape
    logprobs_bt, greedy_bt = jax.device_get(_score(loaded.graphdef, loaded.params, full))
    mask_bt = full["loss_mask"]
    sums = (np.asarray(logprobs_bt, np.float64) * mask_bt).sum(axis=1)
    all_greedy = (np.asarray(greedy_bt) | (mask_bt == 0)).all(axis=1)
    for row, i in enumerate(chunk):
      out[i] = (float(sums[row]), bool(all_greedy[row]))
  return out


def stop_strings(gen_kwargs: dict) -> list[str]:
  """A task's `until` strings as a list (the harness allows one string or a list)."""
  until = gen_kwargs.get("until") or []
  return [until] if isinstance(until, str) else [stop for stop in until if stop]


def cut_at_stops(text: str, until: list[str]) -> str:
  """`text` up to the first occurrence of any of the `until` strings."""
  cuts = [text.find(stop) for stop in until if stop in text]
  return text[:min(cuts)] if cuts else text


@functools.lru_cache(maxsize=4)
def _chat_specials(tokenizer) -> tuple[re.Pattern, dict[str, int]]:
  """(a pattern splitting text at the chat protocol's special tokens spelled by name, {name: id}), built once
  per tokenizer rather than per request."""
  t = chat.chat_tokens(tokenizer)
  specials = {tokenizer.pieces([i])[0]: i for i in dataclasses.astuple(t) if i not in (t.eos, t.pad)}
  return re.compile("(" + "|".join(map(re.escape, specials)) + ")"), specials


def chat_text_ids(text: str, tokenizer) -> list[int]:
  """Ids of `text` in which the chat protocol's special tokens (and BOS) are spelled by name, as
  `Tokenizer.decode` writes them: each name is its token, the text between them ordinary text."""
  pattern, specials = _chat_specials(tokenizer)
  ids = []
  for piece in pattern.split(text):
    ids += [specials[piece]] if piece in specials else tokenizer.encode(piece) if piece else []
  return ids


class HarnessLM(TemplateLM):
  """A loaded lmjax model (lmjax.infer.load.LoadedModel) as an lm_eval model; see the module docstring."""

  def __init__(self, loaded, *, batch_size: int = 32, max_gen_toks: int = DEFAULT_MAX_GEN_TOKS,
               chat_format: bool = False):
    super().__init__()
    if loaded.context is None:
      raise ValueError("the harness needs the model's context length (LoadedModel.context)")
    self.loaded, self.batch_size, self.max_gen_toks = loaded, batch_size, max_gen_toks
    self.chat_format = chat_format

  @property
  def eot_token_id(self) -> int:
    return self.loaded.tokenizer.eos_id

  @property
  def prefix_token_id(self) -> int:
    return self.loaded.tokenizer.bos_id  # lmjax documents start with BOS, so a text's first token follows it

  @property
  def max_length(self) -> int:
    return self.loaded.context

  @property
  def tokenizer_name(self) -> str:
    """What lm_eval fingerprints its cache of chat-templated requests with: the tokenizer's file."""
    return self.loaded.tokenizer.path

  def chat_template(self, chat_template: bool | str = False) -> str:
    return "lmjax.chat" if self.chat_format else ""

  def apply_chat_template(self, chat_history: list[dict], add_generation_prompt: bool = True) -> str:
    """The messages as `chat.render_prompt` renders them, as text (special tokens by name). Without
    add_generation_prompt the last, assistant message is the start of the reply (a task's gen_prefix), left
    open for the model to continue."""
    tok, last = self.loaded.tokenizer, chat_history[-1]
    if add_generation_prompt or last["role"] != "assistant":
      return tok.decode(chat.render_prompt(chat_history, tok))
    return tok.decode(chat.render_prompt(chat_history[:-1], tok) + tok.encode(last["content"]))

  def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
    """The text's ids, after BOS unless add_special_tokens is False (the harness then prefixes BOS itself);
    for a chat model, the chat protocol's tokens spelled by name are those tokens (`chat_text_ids`) and a text
    that starts with BOS gets no second one."""
    tok = self.loaded.tokenizer
    ids = chat_text_ids(string, tok) if self.chat_format else tok.encode(string)
    return ids if add_special_tokens is False or ids[:1] == [self.prefix_token_id] else [self.prefix_token_id, *ids]

  def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
    pairs = [truncate_left(context, continuation, self.max_length) for _, context, continuation in requests]
    results = score_pairs(self.loaded, pairs, self.batch_size)
    for (request, _, _), result in zip(requests, results):
      self.cache_hook.add_partial("loglikelihood", request, result)
    return results

  def rolling_windows(self, text: str) -> list[tuple[list[int], list[int]]]:
    """(context ids, ids scored) windows covering the text's ids once each, every window within the context."""
    ids = self.loaded.tokenizer.encode(text)
    windows = get_rolling_token_windows(ids, self.prefix_token_id, self.max_length, context_len=1)
    return [make_disjoint_window(w) for w in windows]

  def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
    windows = [self.rolling_windows(request.args[0]) for request in requests]
    scores = iter(score_pairs(self.loaded, [w for ws in windows for w in ws], self.batch_size))
    results = [sum(next(scores)[0] for _ in ws) for ws in windows]
    for request, result in zip(requests, results):
      self.cache_hook.add_partial("loglikelihood_rolling", request.args, result)
    return results

  def sampling(self, gen_kwargs: dict) -> SamplingParams:
    """The engine's settings for a task's gen_kwargs: greedy unless do_sample; EOS (a chat model's
    <|assistant_end|>) and each `until` string that is one token stop the row early (the rest are cut from
    the text)."""
    encoded = [self.loaded.tokenizer.encode(stop) for stop in stop_strings(gen_kwargs)]
    single = [ids[0] for ids in encoded if len(ids) == 1]
    reply_end = [chat.chat_tokens(self.loaded.tokenizer).assistant_end] if self.chat_format else []
    stops = tuple(dict.fromkeys([self.eot_token_id, *reply_end, *single]))[:MAX_STOP_IDS]
    temperature = float(gen_kwargs.get("temperature", 0.0)) if gen_kwargs.get("do_sample") else 0.0
    return SamplingParams(max_new_tokens=int(gen_kwargs.get("max_gen_toks", self.max_gen_toks)),
                          temperature=temperature, top_k=int(gen_kwargs.get("top_k") or 0),
                          top_p=float(gen_kwargs.get("top_p") or 1.0), stop_ids=stops)

  def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
    groups = collections.defaultdict(list)  # requests with the same gen_kwargs generate together
    for i, request in enumerate(requests):
      groups[repr(sorted(request.args[1].items()))].append(i)
    results = [None] * len(requests)
    for indices in groups.values():
      gen_kwargs = requests[indices[0]].args[1]
      sampling, until = self.sampling(gen_kwargs), stop_strings(gen_kwargs)
      prompts = [self.tok_encode(requests[i].args[0]) for i in indices]
      replies = engine.continuations(self.loaded.graphdef, self.loaded.params, prompts, sampling,
                                     slots=min(self.batch_size, len(prompts)), context=self.max_length)
      for i, reply in zip(indices, replies):
        ids = list(reply.reply)
        if ids and ids[-1] in sampling.stop_ids:
          ids = ids[:-1]
        results[i] = cut_at_stops(self.loaded.tokenizer.decode(ids), until)
        self.cache_hook.add_partial("generate_until", requests[i].args, results[i])
    return results
