"""SFT: packed conversations keep the assistant-only mask on every turn type, and `lmjax sft` fine-tunes
a pretrained run through the same loop (loss falls, validation is logged, `kill -9` resumes exactly)."""
import json

import numpy as np
import pytest

from lmjax import chat
from lmjax.data.chat_pipeline import make_chat_dataset, render_examples
from lmjax.data.tokenizer import Tokenizer
from lmjax.train.metrics import read_metrics
from tests.train.conftest import kill_9_after_checkpoint, logged_losses, run_stage

CONVERSATIONS = [
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"},
     {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye."},
     {"role": "assistant", "content": "Goodbye."}],
    [{"role": "user", "content": "What is 6*7?"},
     {"role": "assistant", "content": [{"type": "tool_call", "tool": "calculator", "input": "6*7"},
                                       {"type": "tool_output", "output": "42"},
                                       {"type": "text", "text": "It is 42."}]}],
    [{"role": "user", "content": "Who wrote Botchan?"}, {"role": "assistant", "content": "I don't know."}],
]
SAID = ["Hello.<|assistant_end|>Goodbye.<|assistant_end|>",
        "<|tool_call_start|>calculator\n6*7<|tool_call_end|>It is 42.<|assistant_end|>",
        "I don't know.<|assistant_end|>"]


def test_packed_rows_supervise_exactly_the_assistant_tokens_of_each_conversation(tokens_workdir):
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  examples = render_examples(CONVERSATIONS, tok, seq_len=96)
  batch = next(iter(make_chat_dataset(examples, seq_len=96, batch_size=1, seed=0, shuffle=False)))
  seg, mask, targets, pos = batch["segment_ids"][0], batch["loss_mask"][0], batch["targets"][0], batch["positions"][0]
  assert seg.max() == 3  # all three conversations share the row
  said = {tok.decode(targets[(seg == s) & (mask > 0)]) for s in (1, 2, 3)}
  assert said == set(SAID)
  for s in (1, 2, 3):
    assert (pos[seg == s] == np.arange((seg == s).sum())).all()  # positions restart per conversation
  assert mask[seg == 0].sum() == 0


@pytest.fixture(scope="module")
def sft_flags(uninterrupted, tmp_path_factory):
  """The fine-tuning run's flags: 12 steps from the tiny pretrained run on 60 arithmetic conversations (no
  TensorBoard: importing its writer costs each process seconds)."""
  data = tmp_path_factory.mktemp("sft_data") / "conversations.jsonl"
  rng = np.random.default_rng(0)
  with open(data, "w") as f:
    for _ in range(60):
      a, b = rng.integers(1, 9, 2)
      chat.validate(messages := [{"role": "user", "content": f"What is {a} plus {b}?"},
                                 {"role": "assistant", "content": f"{a} plus {b} is {a + b}."}])
      f.write(json.dumps({"messages": messages}) + "\n")
  return (f"--config.sft.base_workdir={uninterrupted}", f"--config.sft.conversations={data}",
          "--config.sft.val_fraction=0.2", "--config.train.steps=12", "--config.eval.every_steps=6",
          "--config.log.tensorboard=false")


@pytest.fixture(scope="module")
def fine_tuned(sft_flags, tokens_workdir, tmp_path_factory):
  """(workdir, stdout) of the uninterrupted fine-tuning run, also the reference for the resume test."""
  workdir = tmp_path_factory.mktemp("sft")
  return workdir, run_stage("sft", workdir, tokens_workdir, *sft_flags).stdout


def test_sft_stage_fine_tunes_the_pretrained_run(fine_tuned):
  workdir, stdout = fine_tuned
  assert "validation conversations" in stdout
  metrics = read_metrics(workdir)
  assert [m["step"] for m in metrics] == list(range(1, 13))
  assert metrics[-1]["loss"] < metrics[0]["loss"] - 1.0
  assert [m for m in metrics if "val_loss" in m][-1]["val_loss"] < 3.0


def test_the_fine_tuned_run_carries_its_tokenizer_so_later_stages_find_it(fine_tuned, tokens_workdir):
  workdir, _ = fine_tuned
  assert (workdir / "tokenizer.model").read_bytes() == (tokens_workdir / "tokenizer.model").read_bytes()


def test_sft_resumes_exactly_after_kill_9(fine_tuned, sft_flags, tokens_workdir, tmp_path):
  killed_at = kill_9_after_checkpoint("sft", tmp_path, tokens_workdir, *sft_flags, step=4)
  assert 4 < killed_at < 12, "the run should have been killed part-way, past its first checkpoint"
  run_stage("sft", tmp_path, tokens_workdir, *sft_flags)
  assert 4 <= json.load(open(tmp_path / "summary.json"))["resumed_from"] <= killed_at
  # The 12 batches are all different rows, so equal losses after the resume step also pin the data
  # position: a pipeline restarted from its first batch would give other losses.
  assert logged_losses(tmp_path) == logged_losses(fine_tuned[0])  # exactly, step for step


def test_sft_mixture_draws_valid_conversations_from_every_configured_source():
  from configs import base
  from lmjax.data.posttrain.sources import SOURCES
  from lmjax.train.sft import mixed_conversations
  from tests.conftest import CORPUS
  config = base.get_config().sft
  config.mixture.update(file=0.0, chatterbot=1.0, math=2.0, identity=0.5, search=0.5)
  config.update(num_conversations=400, math_problems=100, search_documents=str(CORPUS / "bible_kjv.jsonl.gz"))
  conversations = mixed_conversations(config)
  assert len(conversations) == 400 and set(config.mixture) == set(SOURCES)
  for messages in conversations:
    chat.validate(messages)
  tools = [p.get("tool") for c in conversations for m in c if isinstance(m["content"], list) for p in m["content"]]
  assert {"calculator", "search"} <= set(tools)
  assert mixed_conversations(config) == conversations  # deterministic


def test_a_bad_conversation_line_is_an_error_naming_the_file_and_line(tmp_path):
  from lmjax.data.chat_pipeline import read_conversations
  path = tmp_path / "c.jsonl"
  good = {"messages": CONVERSATIONS[2]}
  path.write_text(json.dumps(good) + "\n" + json.dumps({"messages": [{"role": "robot", "content": "hi"}]}) + "\n")
  with pytest.raises(ValueError, match=f"{path}:2: not a valid conversation .*unknown role"):
    read_conversations(str(path))
