"""Running training stages through the real CLI in a subprocess, as the training tests do, and the reward-model
run that test_reward_model.py and test_rl.py share (the tiny pretraining run they start from, `uninterrupted`,
is in tests/conftest.py: the eval tests read it too)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from lmjax.train.metrics import read_metrics
from tests.conftest import REPO

CONFIG = str(REPO / "tests" / "train" / "tiny_config.py")


def command(stage, workdir, tokens_workdir, *overrides):
  return [sys.executable, "-m", "lmjax.cli", stage, "--config", CONFIG, "--workdir", str(workdir),
          f"--config.data.tokenizer={tokens_workdir / 'tokenizer.model'}",
          f"--config.data.tokens_dir={tokens_workdir / 'tokens'}", *overrides]


def subprocess_env():
  return dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")


def run_stage(stage, workdir, tokens_workdir, *overrides, check=True):
  return subprocess.run(command(stage, workdir, tokens_workdir, *overrides), env=subprocess_env(),
                        capture_output=True, text=True, timeout=300, check=check, cwd=REPO)


def logged_losses(workdir) -> dict[int, float]:
  """{step: training loss} from WORKDIR/metrics.jsonl, whole lines only (a live run may be mid-line)."""
  return {m["step"]: m["loss"] for m in read_metrics(workdir)}


def kill_9_after_checkpoint(stage, workdir, tokens_workdir, *overrides, step: int) -> int:
  """Runs a stage until checkpoint `step` is committed and a later step is logged, then SIGKILLs it (no
  clean-up, as on a preempted machine); returns the last step it logged."""
  with tempfile.TemporaryFile("w+") as stderr:
    process = subprocess.Popen(command(stage, workdir, tokens_workdir, *overrides), env=subprocess_env(),
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    committed = workdir / "checkpoints" / str(step) / "commit_success.txt"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
      if committed.exists() and max(logged_losses(workdir), default=0) > step:
        break
      time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    if process.wait() > 0:
      stderr.seek(0)
      raise AssertionError(f"`lmjax {stage}` failed before it could be killed:\n{stderr.read()[-3000:]}")
  return max(logged_losses(workdir), default=0)


def separable_pairs(n, seed=0):
  """Arithmetic preference pairs a reward model separates at once: a correct sum is chosen over a refusal."""
  rng = np.random.default_rng(seed)
  for _ in range(n):
    a, b = rng.integers(1, 50, 2)
    yield {"prompt": f"Is {a} plus {b} equal to {a + b}?", "chosen": f"Yes, {a} plus {b} is {a + b}.",
           "rejected": "I refuse to answer that."}


@pytest.fixture(scope="session")
def rm_flags(uninterrupted, tmp_path_factory):
  """The reward-model run's flags: 16 steps from the tiny pretrained run on 80 arithmetic pairs (no
  TensorBoard: importing its writer costs each process seconds)."""
  pairs = tmp_path_factory.mktemp("rm_data") / "pairs.jsonl"
  pairs.write_text("".join(json.dumps(p) + "\n" for p in separable_pairs(80)))
  return (f"--config.rm.base_workdir={uninterrupted}", f"--config.rm.pairs={pairs}",
          "--config.rm.val_fraction=0.25", "--config.train.steps=16", "--config.train.seq_len=96",
          "--config.eval.every_steps=8", "--config.optim.lr=3e-3", "--config.log.tensorboard=false")


@pytest.fixture(scope="session")
def reward_model(rm_flags, tokens_workdir, tmp_path_factory):
  """(workdir, stdout) of the uninterrupted reward-model run: the reference for the resume test, and RL's
  reward in test_rl.py."""
  workdir = tmp_path_factory.mktemp("rm")
  return workdir, run_stage("rm", workdir, tokens_workdir, *rm_flags).stdout
