"""Checksums of a checkpoint's files, so that damage orbax reads without noticing (a flipped byte in an
array's data restores silently wrong values) counts as damage too.

Each step folder holds MANIFEST: the size and xxh3-128 of every file in it. It is written while orbax
finalises the save, before the folder is renamed into place (or its commit file written, on GCS), so a
checkpoint is visible only together with its manifest. A restore checks the files first (`verify`); a
checkpoint saved before manifests were kept is restored unchecked.
"""
import json
import os
import re
from typing import Callable

import xxhash

from lmjax import distributed, fs

MANIFEST = "CHECKSUMS.json"
ALGORITHM = "xxh3_128"
# Orbax's commit bookkeeping in the step folder's top level, rewritten after the manifest: not covered.
WRITTEN_AT_COMMIT = ("_CHECKPOINT_METADATA", "commit_success.txt")
_STEP_FOLDER = re.compile(r"^\d+(\.orbax-checkpoint-tmp.*)?$")  # <step>, or orbax's temporary name of it
_CHUNK = 8 << 20
_NO_MANIFEST = "no manifest"


class ChecksumError(RuntimeError):
  """A file of a checkpoint is missing or differs from the checkpoint's manifest."""


def digest(path: str) -> tuple[int, str]:
  """(bytes, xxh3-128 hex digest) of file `path`, read in 8 MiB chunks."""
  h, size = xxhash.xxh3_128(), 0
  with fs.open(path, "rb") as f:
    while chunk := f.read(_CHUNK):
      h.update(chunk)
      size += len(chunk)
  return size, h.hexdigest()


def _covered(step_dir: str) -> list[str]:
  """The files of `step_dir` a manifest covers, relative to it: all but the manifest and orbax's commit files."""
  return sorted(f for f in fs.files_below(step_dir) if f != MANIFEST and f not in WRITTEN_AT_COMMIT)


def write(step_dir: str) -> None:
  """Writes `step_dir`/MANIFEST for the files now in it."""
  files = {}
  for name in _covered(step_dir):
    size, hexdigest = digest(os.path.join(step_dir, name))
    files[name] = {"bytes": size, ALGORITHM: hexdigest}
  fs.write_atomically(os.path.join(step_dir, MANIFEST), json.dumps({"algorithm": ALGORITHM, "files": files},
                                                                  indent=1))


def after_save(directory: str) -> Callable[[], None]:
  """Orbax's post-finalization callback for a manager of `directory`: process 0 writes the manifest of the
  step being committed (a step folder with no commit file and no manifest yet). If that fails the save is
  still committed, unchecked, and said so: losing the checkpoint would be worse."""
  def write_in_flight() -> None:
    if not distributed.is_main_process():
      return
    for name in fs.listdir(directory):
      step_dir = os.path.join(directory, name)
      if (_STEP_FOLDER.match(name) and not fs.exists(os.path.join(step_dir, "commit_success.txt"))
          and not fs.exists(os.path.join(step_dir, MANIFEST))):
        try:
          write(step_dir)
        except Exception as error:  # the callback's exception would silently drop the save
          print(f"checkpoint: could not write {MANIFEST} in {step_dir} ({type(error).__name__}: {error}); "
                "committing it without checksums", flush=True)
  return write_in_flight


def _problem(step_dir: str) -> str | None:
  """What differs between `step_dir` and its manifest (the first file found), _NO_MANIFEST, or None."""
  manifest_path = os.path.join(step_dir, MANIFEST)
  if not fs.exists(manifest_path):
    return _NO_MANIFEST
  try:
    files = json.loads(fs.read_text(manifest_path))["files"]
  except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
    return f"{MANIFEST} does not parse ({type(error).__name__}: {error})"
  for name, expected in sorted(files.items()):
    path = os.path.join(step_dir, name)
    if not fs.exists(path):
      return f"{name} is missing ({MANIFEST} lists it)"
    try:
      size, hexdigest = digest(path)
    except OSError as error:
      return f"{name} does not read ({type(error).__name__}: {error})"
    if size != expected["bytes"]:
      return f"{name} has {size} bytes, {MANIFEST} says {expected['bytes']}"
    if hexdigest != expected[ALGORITHM]:
      return f"{name} differs from its {ALGORITHM} in {MANIFEST}"
  return None


def verify(step_dir: str) -> bool:
  """True if every file `step_dir`'s manifest lists matches it, False if it has no manifest (saved before
  manifests were kept); raises ChecksumError naming the first file that differs. Process 0 reads the files
  and tells the others (a collective: every process calls it at the same point)."""
  problem = _problem(step_dir) if distributed.is_main_process() else None
  problem = distributed.all_gather_json(problem)[0]
  if problem == _NO_MANIFEST:
    return False
  if problem:
    raise ChecksumError(problem)
  return True
