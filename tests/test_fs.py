"""The filesystem layer: file:// URLs are local paths, remote URLs stay URLs, and files round-trip."""
import os

import pytest

from lmjax import fs
from lmjax.config import ConfigError


def test_file_url_is_its_local_path(tmp_path):
  assert fs.normalize(f"file://{tmp_path}/run") == f"{tmp_path}/run"
  assert not fs.is_remote(f"file://{tmp_path}") and fs.absolute(f"file://{tmp_path}/a") == f"{tmp_path}/a"
  assert fs.normalize("runs/x") == "runs/x" and fs.absolute("runs/x") == os.path.abspath("runs/x")


def test_files_round_trip_through_a_file_url(tmp_path):
  root = f"file://{tmp_path}"
  fs.makedirs(os.path.join(root, "a", "b"))
  fs.write_text(os.path.join(root, "a", "b", "x.json"), "{}")
  fs.write_atomically(os.path.join(root, "a", "y.json"), "[1]")
  assert fs.isdir(os.path.join(root, "a")) and fs.isfile(os.path.join(root, "a", "y.json"))
  assert fs.exists(os.path.join(root, "a", "b", "x.json")) and not fs.exists(os.path.join(root, "nope"))
  assert fs.read_text(os.path.join(root, "a", "y.json")) == "[1]"
  assert sorted(fs.listdir(os.path.join(root, "a"))) == ["b", "y.json"]
  assert sorted(fs.files_below(root)) == ["a/b/x.json", "a/y.json"]
  assert sorted(fs.glob(os.path.join(root, "**", "*.json"))) == [f"{tmp_path}/a/b/x.json", f"{tmp_path}/a/y.json"]
  fs.copy(os.path.join(root, "a", "y.json"), os.path.join(root, "z.json"))
  assert (tmp_path / "z.json").read_text() == "[1]" and not (tmp_path / "z.json.tmp").exists()
  fs.remove(os.path.join(root, "z.json"))
  assert not (tmp_path / "z.json").exists()


def test_a_gs_url_stays_a_gs_path_without_touching_the_network():
  p = fs.path("gs://bucket/run")
  assert os.fspath(p / "checkpoints") == "gs://bucket/run/checkpoints"
  assert fs.is_remote("gs://bucket/run") and fs.absolute("gs://bucket/run") == "gs://bucket/run"
  assert os.path.join("gs://bucket/run", "tokens") == "gs://bucket/run/tokens"  # string joins are safe
  assert fs.split_glob("gs://bucket/data/*.jsonl.gz") == ("gs://bucket/data", "*.jsonl.gz")
  assert fs.split_glob("gs://bucket/d/x?/[ab].json") == ("gs://bucket/d", "x?/[ab].json")


def test_a_local_only_argument_given_a_remote_url_names_the_argument():
  with pytest.raises(ConfigError, match=r"config.data.tokens_dir=gs://b/t is remote, but .* set config.data"):
    fs.local("gs://b/t", "config.data.tokens_dir", "ArrayRecord shards are read from local files")
  assert fs.local("file:///tmp/t", "config.data.tokens_dir", "") == "/tmp/t"
