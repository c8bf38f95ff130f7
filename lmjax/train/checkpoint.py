"""Orbax checkpoints of the TrainState plus the data iterator's position, restorable onto any mesh.

A save is visible only when complete (orbax writes `<step>.orbax-checkpoint-tmp*` and renames it). A
checkpoint that fails to read (a file missing, truncated or unparsable) is moved aside to
WORKDIR/checkpoints_damaged/ and the newest good one restored instead (`restore_newest`). Each step folder
carries the checksums of its files (lmjax.train.checksums), checked before it is read, so a flipped byte
counts as damage too.
"""
import os
import re

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from lmjax import distributed, fs
from lmjax.config import UserError
from lmjax.train import checksums

DAMAGED = "checkpoints_damaged"  # beside checkpoints/: orbax never lists (or rotates out) what is in it


class DamagedCheckpointsError(UserError, RuntimeError):
  """Every checkpoint of a run failed to read; none was moved."""


def make_manager(directory: str, *, keep: int, writer: bool = False) -> ocp.CheckpointManager:
  """A manager of WORKDIR/checkpoints/<step>/{state,data}, keeping the `keep` most recent; `directory` may be
  a local path, a file:// or a gs:// URL. A `writer` (the run holding the folder's lock) also deletes the
  temporary folders of saves that never finished; a reader must not, as they may be a live run's."""
  directory = fs.absolute(directory)
  options = ocp.CheckpointManagerOptions(
      max_to_keep=keep, create=True, cleanup_tmp_directories=writer,
      async_options=ocp.AsyncOptions(post_finalization_callback=checksums.after_save(directory)))
  return ocp.CheckpointManager(fs.path(directory), options=options, item_names=("state", "data"))


def save(manager: ocp.CheckpointManager, step: int, state, data_state: dict) -> None:
  """Saves asynchronously; orbax writes under a temporary name, so a killed save never looks complete."""
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                             data=ocp.args.JsonSave(data_state)))


def _target(abstract_tree, shardings):
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract_tree, shardings)


def restore(manager: ocp.CheckpointManager, step: int, abstract_state, shardings):
  """(state, data_state) of `step`, each array placed directly into its sharding in `shardings`."""
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(_target(abstract_state, shardings)), data=ocp.args.JsonRestore()))
  return restored.state, restored.data


def restore_params(manager: ocp.CheckpointManager, step: int, abstract_params, shardings):
  """The parameters of `step` alone, placed into `shardings`: the optimizer state and data position are
  never read (orbax's partial restore of the state item), so inference needs no optimizer."""
  target = {"params": _target(abstract_params, shardings)}
  restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
      item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target), partial_restore=True)))
  return restored.state["params"]


def restore_newest(manager: ocp.CheckpointManager, abstract_state, shardings):
  """(step, state, data_state) of the newest checkpoint that reads whole, or None if there is none.

  Each newer one that failed is reported in a line and moved to WORKDIR/checkpoints_damaged/ (kept, not
  deleted) once an older one has read; if none reads, nothing is moved (a changed config fails them all
  alike) and DamagedCheckpointsError names each with its reason.
  """
  failed = []
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      verified = checksums.verify(_step_dir(manager, step))
      state, data = restore(manager, step, abstract_state, shardings)
      reason = None
    except Exception as error:  # a torn file raises many types in orbax and tensorstore (ValueError, KeyError...)
      reason = _reason(error)
    reason = next((r for r in distributed.all_gather_json(reason) if r), None)  # one process failing fails all
    if reason is None:
      for bad, why in failed:
        _move_aside(manager, bad, why, restored=step)
      if failed:
        manager.reload()
      _say_if_unverified(manager, step, verified)
      return step, state, data
    failed.append((step, reason))
  if failed:
    listing = "; ".join(f"step {step}: {why}" for step, why in failed)
    raise DamagedCheckpointsError(f"no checkpoint in {manager.directory} reads ({listing}). If the config changed "
                                  "since they were saved, restore it; else move checkpoints/ aside to start over")
  return None


def newest_params(manager: ocp.CheckpointManager, abstract_params, shardings):
  """(step, parameters) of the newest checkpoint whose parameters read, for a reader (inference, a later
  stage loading its base run): each newer one that failed is reported in a line and left where it is (the
  run that owns them moves them aside when it resumes)."""
  failed = []
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      verified = checksums.verify(_step_dir(manager, step))
      params = restore_params(manager, step, abstract_params, shardings)
    except Exception as error:  # as in restore_newest: a torn file raises many types
      failed.append((step, _reason(error)))
      continue
    for bad, why in failed:
      print(f"checkpoint: step {bad} of {manager.directory} is damaged ({why}); reading step {step}", flush=True)
    _say_if_unverified(manager, step, verified)
    return step, params
  listing = "; ".join(f"step {step}: {why}" for step, why in failed)
  raise DamagedCheckpointsError(f"no checkpoint in {manager.directory} reads ({listing})")


def _step_dir(manager: ocp.CheckpointManager, step: int) -> str:
  return os.path.join(os.fspath(manager.directory), str(step))


def _say_if_unverified(manager: ocp.CheckpointManager, step: int, verified: bool) -> None:
  if not verified and distributed.is_main_process():
    print(f"checkpoint: step {step} of {manager.directory} has no {checksums.MANIFEST} (saved before checksums "
          "were kept); restored it unchecked", flush=True)


def _reason(error: Exception) -> str:
  """`Type: first line of the message` (tensorstore's cause when it has one), cut to 200 characters."""
  error = error.__cause__ or error
  text = str(error).strip().split("\n")[0]
  return f"{type(error).__name__}: {text}"[:200]


def _move_aside(manager: ocp.CheckpointManager, step: int, reason: str, *, restored: int) -> None:
  """Moves checkpoint `step` to WORKDIR/checkpoints_damaged/<step>-<reason slug> (process 0), in step with
  the other processes."""
  root = os.path.dirname(os.fspath(manager.directory).rstrip("/"))
  slug = re.sub(r"[^a-z0-9]+", "-", reason.lower()).strip("-")[:48]
  if distributed.is_main_process():
    fs.makedirs(os.path.join(root, DAMAGED))
    target = _unused(os.path.join(root, DAMAGED, f"{step}-{slug}"))
    fs.rename(_step_dir(manager, step), target)
    print(f"checkpoint: step {step} is damaged ({reason}); moved to {target}; resuming from step {restored}",
          flush=True)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(f"checkpoint {step} moved aside")


def _unused(path: str) -> str:
  """`path`, or `path-2`, `path-3`, ... if taken (the same step damaged again on a later run)."""
  candidate, n = path, 2
  while fs.exists(candidate):
    candidate, n = f"{path}-{n}", n + 1
  return candidate
