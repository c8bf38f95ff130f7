"""Shared test setup: 8 fake CPU devices, and a tiny tokenizer + token shards built once per session."""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import pathlib  # noqa: E402

import pytest  # noqa: E402

from configs import base  # noqa: E402
from lmjax.allocator import keep_freed_memory  # noqa: E402
from lmjax.backend import expected_platform  # noqa: E402

if expected_platform() == "cpu":
  keep_freed_memory()  # as the CLI does: XLA:CPU's per-call temp buffers are reused, not re-faulted

REPO = pathlib.Path(__file__).resolve().parents[1]
CORPUS = REPO / "lmjax" / "assets" / "corpus"
TEST_DOCUMENTS = f"{CORPUS}/bible_kjv.jsonl.gz,{CORPUS}/botchan.jsonl.gz,{CORPUS}/fortunes_de_es.jsonl.gz"


def tiny_config(workdir: str | os.PathLike = ""):
  """A model small enough to compile and train in seconds, reading the session's shared tokens."""
  config = base.get_config()
  config.model.update(vocab_size=1024, num_layers=2, embed_dim=64, num_heads=4, num_kv_heads=2, mlp_dim=128)
  config.train.update(steps=8, batch_size=8, seq_len=64)
  config.tokenizer.input_sentence_size = 0
  config.data.update(documents=TEST_DOCUMENTS, num_shards=2, val_fraction=0.05, workers=2, prefetch=0)
  config.checkpoint.every_steps = 4
  config.eval.update(every_steps=4, batches=2)
  config.schedule.warmup_steps = 2
  config.log.tensorboard = False
  if workdir:
    config.data.tokenizer = str(pathlib.Path(workdir) / "tokenizer.model")
    config.data.tokens_dir = str(pathlib.Path(workdir) / "tokens")
  return config


@pytest.fixture(scope="session")
def tokens_workdir(tmp_path_factory) -> pathlib.Path:
  """A workdir holding a 1,024-token BPE tokenizer and token shards of three shipped sources."""
  from lmjax.data import shards, tokenizer
  workdir = tmp_path_factory.mktemp("tokens")
  config = tiny_config(workdir)
  tokenizer.run(config, str(workdir))
  shards.run(config, str(workdir))
  return workdir


def cli_error(capsys, call, *args) -> str:
  """The one-line message of a user error a CLI call reports (exit code 2), from its stderr."""
  with pytest.raises(SystemExit) as stopped:
    call(*args)
  assert stopped.value.code == 2, stopped.value.code
  return capsys.readouterr().err


@pytest.fixture(scope="session")
def uninterrupted(tokens_workdir, tmp_path_factory) -> pathlib.Path:
  """16 steps of tests/train/tiny_config.py through `lmjax pretrain`, uninterrupted: the reference run of the
  resume tests, the base of the SFT, reward-model, RL and LoRA tests, and the eval tests' base run."""
  from tests.train.conftest import run_stage
  workdir = tmp_path_factory.mktemp("uninterrupted")
  run_stage("pretrain", workdir, tokens_workdir)
  return workdir
