"""One writer per folder: a live holder is refused (naming its PID and the lock file), a dead one's lock is
taken over, a process holding a lock holds it again without releasing it early, and every command that
writes a workdir refuses a held one before it starts."""
import os
import re
import socket
import subprocess
import threading

import pytest

from lmjax import cli, lock
from tests.conftest import REPO


def _dead_pid() -> int:
  process = subprocess.Popen(["true"])
  process.wait()
  return process.pid


def test_a_live_holder_is_refused_with_its_pid_and_the_lock_file(tmp_path):
  with subprocess.Popen(["sleep", "30"]) as holder:
    (tmp_path / lock.LOCK).write_text(f"{socket.gethostname()} {holder.pid}")
    with pytest.raises(lock.LockedError, match=rf"in use by process .* {holder.pid} \(lock file .*\.lock\)"):
      lock.acquire(str(tmp_path), wait=False)
    holder.kill()
  assert (tmp_path / lock.LOCK).read_text().endswith(str(holder.pid))  # the refusal left it alone


def test_a_waiter_says_once_who_holds_the_lock_and_takes_it_when_the_holder_ends(tmp_path, capsys):
  holder = subprocess.Popen(["sleep", "0.5"])
  threading.Thread(target=holder.wait).start()  # reaped when it ends, so its PID is gone, not a zombie
  (tmp_path / lock.LOCK).write_text(f"{socket.gethostname()} {holder.pid}")
  assert lock.acquire(str(tmp_path), wait=True, poll_seconds=0.05)
  assert capsys.readouterr().out.count("waiting for") == 1
  lock.release(str(tmp_path))


def test_a_dead_holders_lock_is_taken_over_and_released_after(tmp_path, capsys):
  (tmp_path / lock.LOCK).write_text(f"{socket.gethostname()} {_dead_pid()}")
  with lock.held(str(tmp_path)):
    assert (tmp_path / lock.LOCK).read_text() == f"{socket.gethostname()} {os.getpid()}"
  assert "taking over" in capsys.readouterr().out and not (tmp_path / lock.LOCK).exists()


def test_a_lock_held_again_by_its_holder_is_released_only_by_the_outer_hold(tmp_path):
  with lock.held(str(tmp_path)):
    with lock.held(str(tmp_path)):  # a chain's stage lock, then the stage's own Workdir
      pass
    assert (tmp_path / lock.LOCK).exists()
  assert not (tmp_path / lock.LOCK).exists()


@pytest.mark.parametrize("argv", [["tokenizer", "--config", str(REPO / "configs" / "quickstart.py")],
                                  ["clean", "--input", "nothing/*.warc.gz"]])
def test_every_command_that_writes_a_workdir_refuses_a_live_holder_before_it_starts(argv, tmp_path, capsys):
  with subprocess.Popen(["sleep", "30"]) as holder:
    (tmp_path / lock.LOCK).write_text(f"{socket.gethostname()} {holder.pid}")
    with pytest.raises(SystemExit) as stopped:
      cli.main([*argv, "--workdir", str(tmp_path)])
    holder.kill()
  assert stopped.value.code == 2
  assert re.search(rf"lmjax: {tmp_path} is in use by process \S+ {holder.pid} ", capsys.readouterr().err)
  assert os.listdir(tmp_path) == [lock.LOCK]


def test_a_dry_run_of_a_chain_looks_at_a_running_ones_workdir_without_its_lock(tmp_path, capsys):
  with subprocess.Popen(["sleep", "30"]) as holder:
    (tmp_path / lock.LOCK).write_text(f"{socket.gethostname()} {holder.pid}")
    cli.main(["run", "--config", str(REPO / "tests" / "chain" / "tiny_chain.py"), "--workdir", str(tmp_path),
              "--dry-run"])
    holder.kill()
  assert "cached" in capsys.readouterr().out
