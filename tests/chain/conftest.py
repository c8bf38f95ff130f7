"""The chain tests' one full run of the tiny chain, built once per session and read by test_chain.py and
test_stage_inputs.py: killed in pretraining, then a sweep of two RL clip values and the DPO route over the same
stage folders, with every stage's config reads recorded."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO

TINY_CHAIN = str(REPO / "tests" / "chain" / "tiny_chain.py")
ENV = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
VARIANTS = {"eps_0.1": {"rl.clip_eps": 0.1}, "eps_0.3": {"rl.clip_eps": 0.3}, "dpo": {"chain.preference": "dpo"}}


def lmjax(*args, **kwargs):
  return subprocess.run([sys.executable, "-m", "lmjax.cli", *args], env=ENV, cwd=REPO, capture_output=True,
                        text=True, timeout=900, **kwargs)


def recorded_lmjax(reads, *args) -> None:
  """Runs an `lmjax` command with every stage's config reads recorded into the JSON file `reads`."""
  command = [sys.executable, "-m", "tests.chain.config_reads", str(reads), *args]
  result = subprocess.run(command, env=ENV, cwd=REPO, capture_output=True, text=True, timeout=1200)
  assert result.returncode == 0, result.stderr[-3000:]


def chain_dirs(workdir) -> dict[str, str]:
  """{stage: its folder} of a run's chain.json."""
  with open(workdir / "chain.json") as f:
    return {s["stage"]: s["dir"] for s in json.load(f)["stages"]}


def kill_in_pretraining(workdir, stage_root) -> None:
  """Runs the chain until pretraining has committed its step-4 checkpoint, then SIGKILLs it."""
  process = subprocess.Popen([sys.executable, "-m", "lmjax.cli", "run", "--config", TINY_CHAIN, "--workdir",
                              str(workdir), "--stage-root", str(stage_root)], env=ENV, cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 600
  while time.time() < deadline and process.poll() is None:
    if list(stage_root.glob("pretrain-*/checkpoints/4/commit_success.txt")):
      break
    time.sleep(0.05)
  process.send_signal(signal.SIGKILL)
  if process.wait() > 0:
    raise AssertionError(f"the chain failed before it could be killed:\n{process.stderr.read()[-3000:]}")


@pytest.fixture(scope="session")
def recorded_sweep(tmp_path_factory):
  """(the sweep's folder, {stage: config fields it read}): the tiny chain killed in pretraining, then a sweep of
  VARIANTS (two RL clip values, the DPO route) over the same stage folders, recorded by tests.chain.config_reads.
  The killed run's stages before pretraining are cached for the sweep, so their reads come from elsewhere."""
  root = tmp_path_factory.mktemp("chain")
  kill_in_pretraining(root / "killed", root / "sweep" / "stages")
  ablation = root / "variants.py"
  ablation.write_text(f"BASE = {TINY_CHAIN!r}\nVARIANTS = {VARIANTS!r}\n")
  recorded_lmjax(root / "reads.json", "sweep", str(ablation), "--workdir", str(root / "sweep"))
  with open(root / "reads.json") as f:
    return root / "sweep", json.load(f)


@pytest.fixture(scope="session")
def sweep(recorded_sweep):
  """The recorded sweep's folder: a run folder per variant and the shared stages/."""
  return recorded_sweep[0]
