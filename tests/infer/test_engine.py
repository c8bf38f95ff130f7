"""The engine end to end with a real (tiny, overfit) model: the model emits tool calls, the engine pauses
that slot, runs the sandboxed tool — refusing or cutting off malicious input — prefills its output after what
the cache holds, and the model carries on to finish its reply; tool outputs are marked not sampled; a chat
reply is the same prompt's row of a batch; the reply budget and the tool-call limit act the same for every
caller. The model is trained with the one train step and the chat protocol's assistant-only mask, exactly
as SFT will."""
import dataclasses

import jax
import numpy as np
import pytest

from lmjax import chat, losses
from lmjax.data.tokenizer import Tokenizer
from lmjax.infer.chat_session import chat_reply
from lmjax.infer.engine import chat_engine
from lmjax.infer.load import LoadedModel
from lmjax.infer.sampler import SamplingParams
from lmjax.infer.tools import TOOLS, run_tool
from lmjax.train.setup import build_train_setup
from lmjax.train.step import make_train_step
from tests.conftest import tiny_config

MALICIOUS = ["__import__('os').system('echo pwned')", "10**1000000000", "9**9**9**9", "(2+3)*4"]


def _conversation(i: int, expression: str) -> list[dict]:
  output = run_tool(TOOLS, "calculator", expression)
  return [{"role": "user", "content": f"Question {i}: compute it."},
          {"role": "assistant", "content": [{"type": "tool_call", "tool": "calculator", "input": expression},
                                            {"type": "tool_output", "output": output},
                                            {"type": "text", "text": f"Done with question {i}."}]}]


def _batch(conversations, tok, length):
  rows = [chat.render(c, tok) for c in conversations]
  assert max(len(ids) for ids, _ in rows) <= length + 1
  batch = {k: np.zeros((len(rows), length), np.int32) for k in ("tokens", "targets", "positions", "segment_ids")}
  batch["loss_mask"] = np.zeros((len(rows), length), np.float32)
  for r, (ids, mask) in enumerate(rows):
    n = len(ids) - 1
    batch["tokens"][r, :n], batch["targets"][r, :n] = ids[:-1], ids[1:]
    batch["positions"][r, :n], batch["segment_ids"][r, :n] = np.arange(n), 1
    batch["loss_mask"][r, :n] = mask[1:]
  return batch


@pytest.fixture(scope="module")
def overfit_model(tokens_workdir):
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  conversations = [_conversation(i, e) for i, e in enumerate(MALICIOUS)]
  config = tiny_config()
  config.model.update(num_layers=2, embed_dim=64, num_heads=4, num_kv_heads=2, mlp_dim=128)
  config.train.update(steps=300, batch_size=4, seq_len=128)
  config.optim.update(lr=3e-3, weight_decay=0.0)
  config.mesh.fsdp = 1
  setup = build_train_setup(config, devices=jax.devices()[:1])
  state = setup.init()
  step = make_train_step(setup.graphdef, losses.next_token, setup.optimizer, setup.shardings,
                         batch_sharding=setup.batch_sharding)
  batch = jax.device_put(_batch(conversations, tok, 128), setup.batch_sharding)
  for _ in range(config.train.steps):
    state, metrics = step(state, batch, jax.random.key(0))
  assert float(metrics["loss"]) < 0.05
  return LoadedModel(setup.graphdef, state.params, tok, config.train.steps), conversations


@pytest.mark.parametrize("index", range(len(MALICIOUS)), ids=["import", "huge_power", "tower", "benign"])
def test_engine_runs_the_call_inserts_the_output_and_the_reply_goes_on(overfit_model, index):
  loaded, conversations = overfit_model
  reply = chat_reply(loaded, conversations[index][:1], sampling=SamplingParams(max_new_tokens=48))
  parts = reply.message(loaded.tokenizer)["content"]
  assert reply.tool_calls == 1
  assert parts[0] == {"type": "tool_call", "tool": "calculator", "input": MALICIOUS[index]}
  output = parts[1]["output"]
  assert output == ("20" if MALICIOUS[index] == "(2+3)*4" else output) and (index == 3 or output.startswith("error"))
  assert parts[2] == {"type": "text", "text": f"Done with question {index}."}


def test_the_assistant_mask_covers_exactly_what_the_model_must_say(tokens_workdir):
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  ids, mask = chat.render(_conversation(0, "1+1"), tok)
  said = [i for i, m in zip(ids, mask) if m]
  assert tok.decode(said) == "<|tool_call_start|>calculator\n1+1<|tool_call_end|>Done with question 0.<|assistant_end|>"


def _engine(loaded, slots, sampling=SamplingParams(max_new_tokens=48), **options):
  return chat_engine(loaded.graphdef, loaded.params, loaded.tokenizer, slots=slots, sampling=sampling,
                     max_reply_tokens=options.pop("max_reply_tokens", 96), tools=TOOLS, **options)


def _prompts(loaded, conversations):
  return [chat.render_prompt(c[:1], loaded.tokenizer) for c in conversations]


def test_tool_outputs_are_inserted_marked_not_sampled_and_prefilled_once(overfit_model):
  loaded, conversations = overfit_model
  engine = _engine(loaded, slots=2)
  replies = engine.generate(_prompts(loaded, conversations))
  special = chat.chat_tokens(loaded.tokenizer)
  for conversation, r in zip(conversations, replies):
    assert r.tool_calls == 1
    assert r.message(loaded.tokenizer)["content"] == conversation[1]["content"]
    inserted = [i for i, g in zip(r.reply, r.generated) if not g]
    assert inserted[0] == special.tool_output_start and inserted[-1] == special.tool_output_end
    sampled = [i for i, g in zip(r.reply, r.generated) if g]
    assert special.tool_output_start not in sampled and sampled[-1] == special.assistant_end
  # One prefill per prompt and one per tool output: a tool round continues from the cache.
  assert engine.prefills == len(conversations) + sum(r.tool_calls for r in replies)
  # Two slots decode together: at least the longest reply's sampled tokens, fewer than all replies' together.
  sampled = [sum(r.generated) for r in replies]
  assert max(sampled) <= engine.decode_steps < sum(sampled)


@pytest.mark.parametrize("temperature", [0.0, 1.0], ids=["greedy", "sampled"])
def test_a_chat_reply_is_the_same_prompts_row_of_a_batch(overfit_model, temperature):
  loaded, conversations = overfit_model
  sampling = SamplingParams(max_new_tokens=48, temperature=temperature, seed=11)
  replies = _engine(loaded, slots=3, sampling=sampling, max_reply_tokens=512).generate(
      _prompts(loaded, conversations), seeds=[5, 6, 7, 8])
  for conversation, seed, r in zip(conversations, [5, 6, 7, 8], replies):
    alone = chat_reply(loaded, conversation[:1], sampling=dataclasses.replace(sampling, seed=seed))
    assert alone.reply == r.reply and alone.generated == r.generated


@pytest.mark.parametrize("temperature", [0.0, 1.0], ids=["greedy", "sampled"])
def test_slots_refilled_mid_batch_give_each_row_what_it_gets_alone(overfit_model, temperature):
  """More prompts than slots, of different lengths: rows start in whichever slot frees first, beside
  whatever else runs, and still produce exactly their solo replies (per-row seeds)."""
  loaded, conversations = overfit_model
  sampling = SamplingParams(max_new_tokens=48, temperature=temperature)
  prompts = _prompts(loaded, conversations) * 2
  seeds = list(range(100, 100 + len(prompts)))
  together = _engine(loaded, slots=3, sampling=sampling).generate(prompts, seeds)
  alone = [_engine(loaded, slots=1, sampling=sampling).generate([p], [s])[0] for p, s in zip(prompts, seeds)]
  assert together == alone
  static = _engine(loaded, slots=3, sampling=sampling, continuous=False).generate(prompts, seeds)
  assert static == alone


def test_the_reply_budget_and_the_tool_call_limit_act_the_same_from_every_caller(overfit_model):
  loaded, conversations = overfit_model
  [prompt] = _prompts(loaded, conversations[3:4])
  [short] = _engine(loaded, slots=1, max_reply_tokens=5).generate([prompt])
  assert len(short.reply) == 5 and all(short.generated) and short.tool_calls == 0
  [limited] = _engine(loaded, slots=2, max_tool_calls=0).generate([prompt])
  chatted = chat_reply(loaded, conversations[3][:1], sampling=SamplingParams(max_new_tokens=48), tools=TOOLS,
                       max_tool_calls=0, max_reply_tokens=96)
  assert chatted == limited and limited.tool_calls == 1
  output = limited.message(loaded.tokenizer)["content"][1]["output"]
  assert output == "error: no more tool calls in this reply (limit 0)"


def test_replies_decoded_a_few_tokens_per_call_are_the_whole_segment_replies(overfit_model):
  loaded, conversations = overfit_model
  prompts, seeds = _prompts(loaded, conversations), [3, 4, 5, 6]
  sampling = SamplingParams(max_new_tokens=48, temperature=1.0)
  whole = _engine(loaded, slots=2, sampling=sampling).generate(prompts, seeds)
  seen = {}
  chunked = _engine(loaded, slots=2, sampling=sampling, steps_per_call=3).generate(
      prompts, seeds, on_tokens=lambda index, ids: seen.setdefault(index, []).append(len(ids)))
  assert chunked == whole
  # Several calls per reply, each seeing the reply grown; the last one sees it whole.
  assert all(len(n) >= 4 and n == sorted(n) and n[-1] == len(r.reply) for n, r in zip(seen.values(), whole))


def test_on_tokens_ends_a_reply_where_it_says_and_each_reply_keeps_its_own_budget(overfit_model):
  loaded, conversations = overfit_model
  prompts = _prompts(loaded, conversations[3:4]) * 3
  engine = _engine(loaded, slots=2, steps_per_call=2)
  full = engine.generate(prompts[:1])[0]
  cut, short, whole = engine.generate(prompts, reply_tokens=[96, 5, 96],
                                      on_tokens=lambda index, ids: index == 0 and len(ids) >= 4)
  assert cut.reply == full.reply[:4] and short.reply == full.reply[:5] and whole == full
