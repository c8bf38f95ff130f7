"""Multi-host training for real: two processes on 127.0.0.1 (4 fake CPU devices each, one global mesh via
jax.distributed) train exactly like one process holding all 8 devices, and checkpoints move between
topologies (2 processes -> 1 device, 8 devices as 2×2×2 -> 1 device, 1 process -> 2) and continue exactly.

Every run is the real CLI in subprocesses under a deadline: a process whose peer never joins is killed by
SIGABRT inside JAX, never left hanging.
"""
import json
import os
import shutil
import socket
import subprocess
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest

from lmjax import distributed
from lmjax.train import checkpoint
from lmjax.train.metrics import read_metrics
from tests.conftest import REPO
from tests.train.conftest import command, logged_losses

MESH_2x2x2 = ("--config.mesh.data=2", "--config.mesh.fsdp=2", "--config.mesh.tensor=2")
ONE_DEVICE = ("--config.mesh.data=1", "--config.mesh.fsdp=1", "--config.mesh.tensor=1")
# 8 steps, checkpoints at 4 and 8; two packing streams, so each of two processes reads only its half.
RUN = ("--config.train.steps=8", "--config.data.streams=2", "--config.eval.batches=1")
DEADLINE_S = 420


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def pretrain(workdir, tokens_workdir, *overrides, processes: int, devices: int, via_env: bool = False):
  """`lmjax pretrain` as `processes` processes with `devices` fake CPU devices each; fails with their
  stderr if any fails, or kills them all past the deadline."""
  address = f"127.0.0.1:{_free_port()}"
  procs, logs = [], []
  for i in range(processes):
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    flags = []
    if processes > 1 and via_env:
      env |= {"LMJAX_COORDINATOR_ADDRESS": address, "LMJAX_NUM_PROCESSES": str(processes),
              "LMJAX_PROCESS_ID": str(i)}
    elif processes > 1:
      flags = ["--coordinator-address", address, "--num-processes", str(processes), "--process-id", str(i)]
    logs.append(open(f"{workdir}.process{i}.log", "w+"))
    procs.append(subprocess.Popen(command("pretrain", workdir, tokens_workdir, *RUN, *overrides, *flags),
                                  env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=logs[-1]))
  deadline = time.time() + DEADLINE_S
  while time.time() < deadline and any(p.poll() is None for p in procs):
    time.sleep(0.2)
  for p in procs:
    if p.poll() is None:
      p.kill()
    p.wait()
  failed = [(i, p.returncode) for i, p in enumerate(procs) if p.returncode != 0]
  tails = []
  for i, log in enumerate(logs):
    log.seek(0)
    tails.append(f"--- process {i} ---\n{log.read()[-2000:]}")
    log.close()
  assert not failed, f"processes (id, return code) {failed} failed or timed out:\n" + "\n".join(tails)
  return workdir


def _interrupted_copy(workdir, to):
  """A copy of a finished run as if its machine died right after the step-4 checkpoint."""
  shutil.copytree(workdir, to)
  shutil.rmtree(to / "checkpoints" / "8")
  return to


def _assert_same_losses(got: dict, want: dict, steps):
  assert sorted(got) == sorted(want) == list(range(1, 9))
  np.testing.assert_allclose([got[s] for s in steps], [want[s] for s in steps], rtol=1e-5)


@pytest.fixture(scope="module")
def one_process(tokens_workdir, tmp_path_factory):
  """The reference: one process holding all 8 devices as a 2×2×2 mesh."""
  workdir = tmp_path_factory.mktemp("mh") / "one_process"
  return pretrain(workdir, tokens_workdir, *MESH_2x2x2, processes=1, devices=8)


@pytest.fixture(scope="module")
def two_processes(tokens_workdir, tmp_path_factory):
  """The same run on two processes of 4 devices each, forming one 2×2×2 mesh."""
  workdir = tmp_path_factory.mktemp("mh") / "two_processes"
  return pretrain(workdir, tokens_workdir, *MESH_2x2x2, processes=2, devices=4)


def test_two_processes_train_exactly_like_one_process_with_all_devices(one_process, two_processes):
  one, two = read_metrics(one_process), read_metrics(two_processes)
  assert [m["step"] for m in two] == list(range(1, 9))  # one line per step: only process 0 writes
  for a, b in zip(one, two):
    for key in ("loss", "grad_norm", "param_norm", "tokens"):
      np.testing.assert_allclose(b[key], a[key], rtol=1e-5)
  assert [m["val_loss"] for m in two if "val_loss" in m] == pytest.approx(
      [m["val_loss"] for m in one if "val_loss" in m], rel=1e-5)
  assert one[-1]["loss"] < one[0]["loss"] - 0.2
  assert len(os.listdir(two_processes / "tensorboard")) == 1  # one event file, from process 0
  assert sorted(os.listdir(two_processes / "checkpoints")) == ["4", "8"]
  manager = checkpoint.make_manager(str(two_processes / "checkpoints"), keep=2)
  data = manager.restore(8, args=ocp.args.Composite(data=ocp.args.JsonRestore())).data
  assert sorted(data["iterator"]) == ["0", "1"]  # each process's stream position, gathered into one


def test_two_process_checkpoint_continues_on_one_device(one_process, two_processes, tokens_workdir, tmp_path):
  resumed = _interrupted_copy(two_processes, tmp_path / "resumed")
  pretrain(resumed, tokens_workdir, *ONE_DEVICE, processes=1, devices=1)
  assert json.load(open(resumed / "summary.json"))["resumed_from"] == 4
  _assert_same_losses(logged_losses(resumed), logged_losses(one_process), range(5, 9))


# ~18 s: one more pretrain process. In the default run a 2×2×2-mesh checkpoint continues on one device in
# test_two_process_checkpoint_continues_on_one_device, and the one-process checkpoint is restored onto another
# topology in test_one_process_checkpoint_continues_on_two_processes.
@pytest.mark.slow
def test_2x2x2_checkpoint_continues_on_one_device(one_process, tokens_workdir, tmp_path):
  resumed = _interrupted_copy(one_process, tmp_path / "resumed")
  pretrain(resumed, tokens_workdir, *ONE_DEVICE, processes=1, devices=1)
  assert json.load(open(resumed / "summary.json"))["resumed_from"] == 4
  _assert_same_losses(logged_losses(resumed), logged_losses(one_process), range(5, 9))


def test_one_process_checkpoint_continues_on_two_processes(one_process, tokens_workdir, tmp_path):
  resumed = _interrupted_copy(one_process, tmp_path / "resumed")
  pretrain(resumed, tokens_workdir, *MESH_2x2x2, processes=2, devices=4, via_env=True)
  assert json.load(open(resumed / "summary.json"))["resumed_from"] == 4
  _assert_same_losses(logged_losses(resumed), logged_losses(one_process), range(5, 9))


def test_an_incomplete_multihost_description_is_a_clear_error():
  with pytest.raises(distributed.MultihostError, match="process id not given"):
    distributed.initialize("127.0.0.1:1234", 2, None)
  with pytest.raises(distributed.MultihostError, match=r"outside \[0, 2\)"):
    distributed.initialize("127.0.0.1:1234", 2, 2)
  distributed.initialize(None, None, None)  # one process: nothing to join
  distributed.initialize(None, 1, 0)
