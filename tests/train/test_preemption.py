"""Preemption and one writer per workdir, through the real CLI: SIGTERM saves a checkpoint at the next step
and exits with preemption.EXIT_CODE, and the rerun matches an uninterrupted run; a second run on a live
run's workdir refuses, naming its PID, and a dead run's lock is taken over."""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

from lmjax import cli, lock
from lmjax.train import preemption
from lmjax.train.workdir import Workdir
from tests.conftest import REPO, cli_error, tiny_config
from tests.train.conftest import command, logged_losses, run_stage, subprocess_env


def test_the_watch_notes_a_signal_restores_the_handlers_and_lets_a_second_one_through():
  # Python's own SIGINT handler, whatever an earlier test in this process left installed
  outside = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    with pytest.raises(KeyboardInterrupt):
      with preemption.Watch() as watch:
        os.kill(os.getpid(), signal.SIGINT)
        assert watch.requested() and watch.signum == signal.SIGINT
        os.kill(os.getpid(), signal.SIGINT)  # the second: stop at once, as without the watch
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
  finally:
    signal.signal(signal.SIGINT, outside)


def _popen(stage, workdir, tokens_workdir, *overrides):
  return subprocess.Popen(command(stage, workdir, tokens_workdir, *overrides), env=subprocess_env(), cwd=REPO,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, process, what: str, timeout_s: float = 240):
  deadline = time.time() + timeout_s
  while not condition():
    if process.poll() is not None or time.time() > deadline:
      process.kill()
      raise AssertionError(f"{what} never happened:\n{process.communicate()[1][-3000:]}")
    time.sleep(0.01)


def test_sigterm_saves_at_the_next_step_exits_75_and_the_rerun_continues_exactly(uninterrupted, tokens_workdir,
                                                                                  tmp_path):
  process = _popen("pretrain", tmp_path, tokens_workdir)
  _wait_for(lambda: max(logged_losses(tmp_path), default=0) >= 5, process, "step 5")
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == preemption.EXIT_CODE == 75, stderr[-3000:]
  assert "SIGTERM received; saving a checkpoint after this step" in stderr and "Traceback" not in stderr
  stopped = int(stderr.split("saving the checkpoint of step ")[1].split()[0])
  assert 5 <= stopped < 16 and max(logged_losses(tmp_path)) == stopped
  assert (tmp_path / "checkpoints" / str(stopped)).is_dir() and not (tmp_path / lock.LOCK).exists()
  run_stage("pretrain", tmp_path, tokens_workdir)
  assert logged_losses(tmp_path) == logged_losses(uninterrupted)  # exactly, step for step


@pytest.mark.slow  # ~15 s: two pretrains
def test_a_second_run_on_a_live_runs_workdir_refuses_naming_its_pid(uninterrupted, tokens_workdir, tmp_path):
  first = _popen("pretrain", tmp_path, tokens_workdir)
  _wait_for(lambda: (tmp_path / lock.LOCK).exists(), first, "the first run's lock")
  with pytest.raises(lock.LockedError, match=rf"{tmp_path} is in use by process \S+ {first.pid} \(lock file "):
    with Workdir(tiny_config(tokens_workdir), str(tmp_path)):
      pass
  _, stderr = first.communicate(timeout=240)
  assert first.returncode == 0, stderr[-3000:]
  assert logged_losses(tmp_path) == logged_losses(uninterrupted)  # the first run was never disturbed


def test_the_cli_refuses_a_live_holder_and_takes_over_a_dead_ones_lock(tokens_workdir, tmp_path, capsys):
  argv = command("pretrain", tmp_path, tokens_workdir, "--config.train.steps=2")[3:]
  with subprocess.Popen(["sleep", "60"]) as holder:
    (tmp_path / lock.LOCK).write_text(f"{socket.gethostname()} {holder.pid}")
    assert re.search(rf"lmjax: .* in use by process \S+ {holder.pid} ", cli_error(capsys, cli.main, argv))
    assert not (tmp_path / "config.json").exists()  # the refused run wrote nothing
    holder.kill()
  cli.main(argv)  # the holder is gone: its lock is taken over
  assert max(logged_losses(tmp_path)) == 2 and not (tmp_path / lock.LOCK).exists()
