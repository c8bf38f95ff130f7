"""Checkpoints heal: one that fails to read (a file truncated or missing, a folder gone) or whose files
differ from its checksums (a flipped byte orbax would read silently) is reported in one line, moved to
checkpoints_damaged/ and the newest good one restored, and a rerun then matches an uninterrupted run; only
when none reads does the run stop, moving nothing."""
import glob
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lmjax.train import checkpoint, checksums
from tests.train.conftest import logged_losses, run_stage


def _largest_file(folder):
  return max((f for f in glob.glob(f"{folder}/**", recursive=True) if os.path.isfile(f)), key=os.path.getsize)


def _truncate_a_data_file(step_dir):
  data_file = _largest_file(os.path.join(step_dir, "state"))
  with open(data_file, "r+b") as f:
    f.truncate(os.path.getsize(data_file) // 2)


def _flip_a_byte_of_the_largest_array_file(step_dir):
  data_file = _largest_file(os.path.join(step_dir, "state"))
  with open(data_file, "r+b") as f:
    f.seek(os.path.getsize(data_file) // 2)
    byte = f.read(1)[0]
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte ^ 0x01]))


DAMAGE = {
    "flipped_byte": _flip_a_byte_of_the_largest_array_file,
    "truncated_data_file": _truncate_a_data_file,
    "missing_metadata_file": lambda step_dir: os.remove(os.path.join(step_dir, "data", "metadata")),
    "missing_state_manifest": lambda step_dir: os.remove(os.path.join(step_dir, "state", "manifest.ocdbt")),
    "missing_subdirectory": lambda step_dir: shutil.rmtree(os.path.join(step_dir, "state")),
    "empty_step_folder": lambda step_dir: [shutil.rmtree(step_dir), os.makedirs(step_dir)],
}


def _tree(scale):
  return {"w": jnp.arange(4096.0) * scale, "b": {"c": jnp.full((8, 8), scale)}}


def _saved(tmp_path, steps=(1, 2, 3)):
  manager = checkpoint.make_manager(str(tmp_path / "checkpoints"), keep=5, writer=True)
  for step in steps:
    checkpoint.save(manager, step, _tree(float(step)), {"position": step})
  manager.wait_until_finished()
  return manager


def _restore_newest(tmp_path):
  manager = checkpoint.make_manager(str(tmp_path / "checkpoints"), keep=5, writer=True)
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _tree(0.0))
  shardings = jax.tree.map(lambda x: x.sharding, _tree(0.0))
  return manager, checkpoint.restore_newest(manager, abstract, shardings)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_newest_checkpoint_is_reported_moved_aside_and_the_previous_restored(damage, tmp_path, capsys):
  _saved(tmp_path)
  DAMAGE[damage](str(tmp_path / "checkpoints" / "3"))
  manager, (step, state, data) = _restore_newest(tmp_path)
  assert step == 2 and data == {"position": 2}
  np.testing.assert_array_equal(np.asarray(state["w"]), np.arange(4096.0) * 2)
  assert manager.all_steps() == [1, 2] and sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  [moved] = os.listdir(tmp_path / "checkpoints_damaged")
  assert moved.startswith("3-")
  lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("checkpoint:")]
  assert len(lines) == 1 and "step 3 is damaged (" in lines[0] and "resuming from step 2" in lines[0]
  assert str(tmp_path / "checkpoints_damaged" / moved) in lines[0]


def test_a_committed_checkpoint_carries_the_checksums_of_its_array_files(tmp_path):
  _saved(tmp_path, steps=(1,))
  step_dir = tmp_path / "checkpoints" / "1"
  listed = checksums._covered(str(step_dir))
  assert os.path.relpath(_largest_file(step_dir / "state"), step_dir) in listed
  assert "state/manifest.ocdbt" in listed and checksums.verify(str(step_dir))


def test_a_checkpoint_without_checksums_is_restored_unchecked_and_said_so(tmp_path, capsys):
  """Checkpoints of runs from before checksums were kept still restore."""
  _saved(tmp_path, steps=(1, 2))
  for step in ("1", "2"):
    os.remove(tmp_path / "checkpoints" / step / checksums.MANIFEST)
  _, (step, state, _) = _restore_newest(tmp_path)
  assert step == 2 and float(state["b"]["c"][0, 0]) == 2.0
  [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("checkpoint:")]
  assert f"step 2 of {tmp_path / 'checkpoints'} has no CHECKSUMS.json" in line and "unchecked" in line


def test_a_reader_skips_a_damaged_newest_checkpoint_and_moves_nothing(tmp_path, capsys):
  """Inference and a later stage loading its base run read the newest parameters that read whole."""
  manager = checkpoint.make_manager(str(tmp_path / "checkpoints"), keep=5, writer=True)
  for step in (1, 2):
    checkpoint.save(manager, step, {"params": _tree(float(step)), "opt": _tree(0.0)}, {"position": step})
  manager.wait_until_finished()
  _truncate_a_data_file(str(tmp_path / "checkpoints" / "2"))
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _tree(0.0))
  reader = checkpoint.make_manager(str(tmp_path / "checkpoints"), keep=5)
  step, params = checkpoint.newest_params(reader, abstract, jax.tree.map(lambda x: x.sharding, _tree(0.0)))
  assert step == 1 and float(params["b"]["c"][0, 0]) == 1.0
  assert "step 2 of" in capsys.readouterr().out and (tmp_path / "checkpoints" / "2").exists()


def test_when_no_checkpoint_reads_the_error_names_each_and_nothing_is_moved(tmp_path):
  _saved(tmp_path, steps=(1, 2))
  for step in ("1", "2"):
    _truncate_a_data_file(str(tmp_path / "checkpoints" / step))
  with pytest.raises(checkpoint.DamagedCheckpointsError, match=r"step 2: ChecksumError: .* has \d+ bytes, CHECKSUMS.json says \d+; step 1: ChecksumError"):
    _restore_newest(tmp_path)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  assert not (tmp_path / "checkpoints_damaged").exists()


def test_a_save_that_never_finished_is_ignored_and_its_temporary_folder_removed_by_the_writer(tmp_path):
  _saved(tmp_path, steps=(1,))
  leftover = tmp_path / "checkpoints" / "2.orbax-checkpoint-tmp-1234"
  (leftover / "state").mkdir(parents=True)
  reader = checkpoint.make_manager(str(tmp_path / "checkpoints"), keep=5)
  assert reader.all_steps() == [1] and leftover.exists()  # a reader never touches a live run's save
  manager, (step, _, _) = _restore_newest(tmp_path)
  manager.wait_until_finished()
  assert step == 1 and not leftover.exists()


@pytest.mark.slow  # ~2 min: pretraining resumed past each kind of damage (the restore cases above stay fast)
def test_pretrain_resumes_past_a_damaged_checkpoint_exactly(uninterrupted, tokens_workdir, tmp_path):
  shutil.copytree(uninterrupted, tmp_path / "run")
  for damage in ("flipped_byte", "truncated_data_file", "missing_metadata_file", "missing_subdirectory"):
    DAMAGE[damage](str(tmp_path / "run" / "checkpoints" / "16"))
    result = run_stage("pretrain", tmp_path / "run", tokens_workdir)
    assert "checkpoint: step 16 is damaged" in result.stdout and "resuming from step 12" in result.stdout
    assert logged_losses(tmp_path / "run") == logged_losses(uninterrupted)  # exactly, step for step
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["12", "16"]
  assert len(os.listdir(tmp_path / "run" / "checkpoints_damaged")) == 4
