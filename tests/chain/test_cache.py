"""Stage folders on remote storage: the lock refuses them with the fix; reports name remote runs sensibly."""
import pytest

from lmjax.chain import cache, report
from lmjax.config import ConfigError


def test_a_remote_stage_folder_cannot_be_locked_and_the_error_names_stage_root():
  with pytest.raises(ConfigError, match=r"--stage-root=gs://b/run/stages/x-1 is remote.*--workdir itself may"):
    cache.stage_lock("gs://b/run/stages/x-1")


def test_a_remote_runs_name_and_its_stage_folders_read_as_in_a_local_one():
  assert report.run_name("gs://b/runs/speedrun/") == "speedrun" == report.run_name("/tmp/runs/speedrun")
  assert report._relative("gs://b/run/stages/x-1", "gs://b/run") == "stages/x-1"
  assert report._relative("/local/stages/x-1", "gs://b/run") == "/local/stages/x-1"
  assert report._relative("/tmp/run/stages/x-1", "file:///tmp/run") == "stages/x-1"
