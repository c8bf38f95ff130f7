"""Training tests share one tiny pretraining run, made through the real CLI in a subprocess."""
import os
import signal
import subprocess
import sys
import tempfile
import time

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


@pytest.fixture(scope="session")
def uninterrupted(tokens_workdir, tmp_path_factory):
  """16 steps of the tiny model, uninterrupted: the reference run and the base for SFT."""
  workdir = tmp_path_factory.mktemp("uninterrupted")
  run_stage("pretrain", workdir, tokens_workdir)
  return workdir
