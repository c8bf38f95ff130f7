"""Stage keys and completion markers: a stage's folder is `<name>-<key>`, the key a hash of what decides it.

The key hashes the stage's own config fields (chain/stages.py) and its inputs' keys, so changing an RL
hyperparameter changes only RL's key (and its evaluation's), while a web-filter threshold changes every key
downstream of cleaning. A folder is complete when its DONE marker exists; one without the marker is an
interrupted stage, which resumes in place. Stage folders are local (or file://): the lock (lmjax.lock) is a
file created exclusively, which object stores cannot do.
"""
import hashlib
import json
import os

import ml_collections

from lmjax import fs, lock
from lmjax.data.documents import matching_files

DONE = "DONE.json"

FINGERPRINT_MAX_BYTES = 64 << 20  # files up to this size are identified by content, larger ones by size+mtime


def data_fingerprint(pattern: str) -> list:
  """What identifies the files a glob (or comma-separated globs) matches: their names and contents.

  Not their paths: the same shipped data in another checkout gives the same key.
  """
  return [[os.path.basename(f), _file_identity(f)] for f in matching_files(pattern)]


def _file_identity(path: str) -> str:
  if fs.is_remote(path):
    stat = fs.path(path).stat()
    size, changed = stat.length, f"mtime={stat.mtime}"
  else:
    stat = os.stat(fs.normalize(path))
    size, changed = stat.st_size, f"mtime_ns={stat.st_mtime_ns}"
  if size > FINGERPRINT_MAX_BYTES:
    return f"size={size} {changed}"
  digest = hashlib.sha256()
  with fs.open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def field_values(config: ml_collections.ConfigDict, fields, left_out, data_fields=()) -> dict:
  """{field: value} for each dotted field or section, with the `left_out` fields (the wiring, the names) left
  out and the data fields (globs of input files) replaced by their files' fingerprint."""
  values = {}
  for field in fields:
    node = config
    for part in field.split("."):
      node = node[part]
    if field in data_fields:
      node = data_fingerprint(node)
    values[field] = node.to_dict() if isinstance(node, ml_collections.ConfigDict) else node
  for wired in left_out:
    section, _, leaf = wired.partition(".")
    if isinstance(values.get(section), dict):
      values[section].pop(leaf, None)
    values.pop(wired, None)
  return values


# Raised when a stage's output changes for the same config (a fixed bug), so no folder made before is reused.
# 2: the documents of a chain stage are exactly its input's document files, with path-free ids.
KEY_VERSION = 2


def stage_key(name: str, values: dict, input_keys: dict[str, str]) -> str:
  """12 hex digits of SHA-256 over the stage name, its field values, its inputs' keys and KEY_VERSION."""
  blob = json.dumps({"stage": name, "fields": values, "inputs": input_keys, "version": KEY_VERSION},
                    sort_keys=True, default=list)
  return hashlib.sha256(blob.encode()).hexdigest()[:12]


def config_hash(config: ml_collections.ConfigDict) -> str:
  """12 hex digits of SHA-256 over a whole config (the run's identity in reports)."""
  return hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True, default=list).encode()).hexdigest()[:12]


def is_done(stage_dir: str) -> bool:
  return fs.exists(os.path.join(stage_dir, DONE))


def read_done(stage_dir: str) -> dict:
  return json.loads(fs.read_text(os.path.join(stage_dir, DONE)))


def mark_done(stage_dir: str, record: dict) -> None:
  """Writes the DONE marker atomically: a folder is never marked complete by a half-written file."""
  fs.write_atomically(os.path.join(stage_dir, DONE), json.dumps(record, indent=2, default=list))


def stage_lock(stage_dir: str):
  """The stage folder's lock (lmjax.lock) for a block, waiting while another live process holds it, so two
  chains sharing a stage folder (a sweep on a cluster) compute it once."""
  stage_dir = fs.local(stage_dir, "--stage-root", "a stage folder's lock is a local file created exclusively "
                       "(--workdir itself may stay remote)")
  return lock.held(stage_dir, wait=True, who="chain")
