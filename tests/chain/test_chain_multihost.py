"""The chain across two processes on 127.0.0.1: file stages on process 0, pretraining on both together, one
set of markers; a chain that would reach a single-host stage is refused before anything runs."""
import json
import os
import subprocess
import sys

import pytest

from tests.chain.conftest import TINY_CHAIN
from tests.conftest import REPO
from tests.test_multihost import _free_port

pytestmark = pytest.mark.slow


def _two_processes(workdir, *args, timeout=600):
  address = f"127.0.0.1:{_free_port()}"
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  procs = [subprocess.Popen([sys.executable, "-m", "lmjax.cli", "run", "--config", TINY_CHAIN, "--workdir",
                             str(workdir), "--coordinator-address", address, "--num-processes", "2",
                             "--process-id", str(i), *args], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for i in range(2)]
  try:
    return [p.communicate(timeout=timeout) + (p.returncode,) for p in procs]
  finally:
    for p in procs:
      p.kill()


def test_two_processes_run_the_chain_to_pretraining_once(tmp_path):
  results = _two_processes(tmp_path / "run", "--until", "pretrain")
  assert all(code == 0 for *_, code in results), results[0][1][-3000:] + results[1][1][-3000:]
  with open(tmp_path / "run" / "chain.json") as f:
    stages = {s["stage"]: s for s in json.load(f)["stages"]}
  assert list(stages) == ["clean", "tokenizer", "tokenize", "pretrain"]
  with open(os.path.join(stages["pretrain"]["dir"], "metrics.jsonl")) as f:
    assert [json.loads(line)["step"] for line in f] == list(range(1, 9))  # one writer: each step once
  assert "chain: clean" in results[0][0] and "chain: clean" not in results[1][0]


def test_a_multi_process_chain_that_reaches_rl_is_refused_before_it_starts(tmp_path):
  results = _two_processes(tmp_path / "run")
  assert all(code != 0 for *_, code in results)
  assert "run on one host only" in results[0][1] and not (tmp_path / "run" / "stages").exists()
