"""The chat engine end to end with a real (tiny, overfit) model: the model emits tool calls, the engine
pauses, runs the sandboxed tool — refusing or cutting off malicious input — inserts its output, and the
model carries on to finish its reply. The model is trained with the one train step and the chat
protocol's assistant-only mask, exactly as SFT will."""
import jax
import numpy as np
import pytest

from lmjax import chat, losses
from lmjax.data.tokenizer import Tokenizer
from lmjax.infer.engine import chat_reply
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
  parts = reply.message["content"]
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
