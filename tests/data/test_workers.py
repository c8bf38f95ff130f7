"""No orphans: kill -9 the parent of `lmjax clean` or `lmjax tokenize` and its worker processes end within seconds."""
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from lmjax.data import shards
from lmjax.data.web import shards as web_shards
from tests.conftest import REPO, tiny_config

SHIPPED_WARC = REPO / "lmjax" / "assets" / "web" / "python-docs.warc.gz"


def pool_workers(parent: int) -> list[int]:
  """Process ids of the multiprocessing workers (spawned) whose parent is `parent`, from /proc."""
  found = []
  for entry in os.listdir("/proc"):
    try:
      stat = pathlib.Path(f"/proc/{entry}/stat").read_text()
      cmdline = pathlib.Path(f"/proc/{entry}/cmdline").read_bytes()
    except (OSError, ValueError):
      continue
    ppid = int(stat.rpartition(")")[2].split()[1])
    if ppid == parent and b"spawn_main" in cmdline:
      found.append(int(entry))
  return found


def alive(pid: int) -> bool:
  try:
    state = pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
  except OSError:
    return False
  return state != "Z"


def kill_parent_once_workers_run(argv: list[str]) -> list[int]:
  """Starts `lmjax ARGV`, waits for ≥2 pool workers, kills the parent with SIGKILL; returns the workers' ids."""
  env = dict(os.environ, PYTHONPATH=str(REPO))
  parent = subprocess.Popen([sys.executable, "-m", "lmjax.cli", *argv], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
  deadline, workers = time.time() + 120, []
  while len(workers) < 2 and time.time() < deadline and parent.poll() is None:
    time.sleep(0.05)
    workers = pool_workers(parent.pid)
  os.kill(parent.pid, signal.SIGKILL)
  parent.wait()
  assert len(workers) >= 2, "the command finished or failed before its workers started"
  return workers


def assert_all_exit(workers: list[int], seconds: float = 20) -> None:
  """Every worker gone within `seconds`: one killed before it ran its pool initializer first finishes starting
  Python and importing (seconds on 2 loaded cores), then sees its parent gone and exits."""
  deadline = time.time() + seconds
  while any(alive(pid) for pid in workers) and time.time() < deadline:
    time.sleep(0.05)
  survivors = [pid for pid in workers if alive(pid)]
  for pid in survivors:
    os.kill(pid, signal.SIGKILL)  # leave no orphan behind even when the test fails
  assert not survivors, f"workers {survivors} outlived their killed parent"


def clean_rows(workdir: pathlib.Path) -> list[dict]:
  return [doc.to_json() for path in sorted(workdir.glob("docs/*.jsonl*")) for doc in web_shards.read_documents(path)]


@pytest.mark.slow  # ~20 s: three cleans
def test_clean_workers_exit_when_the_parent_is_killed_and_a_rerun_matches(tmp_path):
  argv = ["clean", "--input", str(SHIPPED_WARC), "--workers", "2", "--workdir"]
  assert_all_exit(kill_parent_once_workers_run(argv + [str(tmp_path / "killed")]))
  env = dict(os.environ, PYTHONPATH=str(REPO))
  for workdir in ("killed", "clean"):
    subprocess.run([sys.executable, "-m", "lmjax.cli", *argv, str(tmp_path / workdir)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  assert clean_rows(tmp_path / "killed") == clean_rows(tmp_path / "clean") and clean_rows(tmp_path / "clean")


def test_tokenize_workers_exit_when_the_parent_is_killed(tokens_workdir, tmp_path):
  config_file = tmp_path / "tokenize_config.py"
  config_file.write_text(
      f"import sys\nsys.path.insert(0, {str(REPO)!r})\nfrom tests.conftest import tiny_config\n"
      f"def get_config():\n  config = tiny_config({str(tmp_path)!r})\n"
      f"  config.data.tokenizer = {str(tokens_workdir / 'tokenizer.model')!r}\n  return config\n")
  workers = kill_parent_once_workers_run(["tokenize", "--config", str(config_file), "--workdir", str(tmp_path)])
  assert_all_exit(workers)
  config = tiny_config(tmp_path)
  config.data.tokenizer = str(tokens_workdir / "tokenizer.model")
  shards.run(config, str(tmp_path))  # a rerun writes every shard afresh: the same bytes as an uninterrupted run
  for split in shards.SPLITS:
    ours, reference = (shards.shard_paths(str(folder / "tokens"), split) for folder in (tmp_path, tokens_workdir))
    assert [pathlib.Path(p).read_bytes() for p in ours] == [pathlib.Path(p).read_bytes() for p in reference]
