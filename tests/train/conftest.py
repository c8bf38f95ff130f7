"""Training tests share one tiny pretraining run, made through the real CLI in a subprocess."""
import os
import subprocess
import sys

import pytest

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


@pytest.fixture(scope="session")
def uninterrupted(tokens_workdir, tmp_path_factory):
  """16 steps of the tiny model, uninterrupted: the reference run and the base for SFT."""
  workdir = tmp_path_factory.mktemp("uninterrupted")
  run_stage("pretrain", workdir, tokens_workdir)
  return workdir
