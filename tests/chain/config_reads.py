"""Which config fields each stage of a chain reads: the chain run with every stage's config watched.

    python -m tests.chain.config_reads OUT.json lmjax run --config C --workdir DIR [...]

Runs the `lmjax` command with every stage's config recorded and writes {stage: [dotted fields read]} to
OUT.json. A field counts as read when its value is taken (attribute, item, `get`, `items`), or when a
section is converted whole (`to_dict` of `config.rl` reads all of rl); serialising the whole config
(config.json) reads nothing. Copies made with `copy_and_resolve_references` are watched too.
"""
import contextlib
import dataclasses
import json
import sys
import threading

import ml_collections


class ConfigReads:
  """Records the dotted fields read through the ConfigDicts registered with it (and copies of them)."""

  def __init__(self):
    self.paths: dict[int, str] = {}  # id(node) -> its dotted path ("" for a stage config's root)
    self.owner: dict[int, str] = {}  # id(node) -> the stage whose config it belongs to
    self.read: dict[str, set[str]] = {}
    self._nodes = []  # keeps registered nodes alive, so their ids are never reused
    self._quiet = threading.local()

  def watch(self, config: ml_collections.ConfigDict, stage: str, path: str = "") -> None:
    self.read.setdefault(stage, set())
    self._nodes.append(config)
    self.paths[id(config)], self.owner[id(config)] = path, stage
    for key, value in config._fields.items():
      if isinstance(value, ml_collections.ConfigDict):
        self.watch(value, stage, f"{path}.{key}" if path else key)

  def _record(self, node, key: str, value) -> None:
    path = self.paths.get(id(node))
    if path is None or getattr(self._quiet, "on", False):
      return
    full = f"{path}.{key}" if path else key
    if isinstance(value, ml_collections.ConfigDict):
      if id(value) not in self.paths:
        self.watch(value, self.owner[id(node)], full)
    else:
      self.read[self.owner[id(node)]].add(full)

  @contextlib.contextmanager
  def installed(self):
    """Patches ConfigDict so reads of watched nodes are recorded, for the duration of the block."""
    cls, reads = ml_collections.ConfigDict, self
    names = ("__getitem__", "copy_and_resolve_references", "to_dict", "to_json", "to_json_best_effort")
    originals = {name: getattr(cls, name) for name in names}
    getitem, copy = originals["__getitem__"], originals["copy_and_resolve_references"]

    def recorded_getitem(node, key):
      value = getitem(node, key)
      if isinstance(key, str) and "." not in key:  # a dotted key recurses through this function
        reads._record(node, key, value)
      return value

    def whole(method):
      def converted(node, *args, **kwargs):
        path = reads.paths.get(id(node))
        if path and not getattr(reads._quiet, "on", False):  # a section read whole; the root is serialised
          reads.read[reads.owner[id(node)]].add(path)
        outer, reads._quiet.on = getattr(reads._quiet, "on", False), True
        try:
          return method(node, *args, **kwargs)
        finally:
          reads._quiet.on = outer
      return converted

    def watched_copy(node, *args, **kwargs):
      result = copy(node, *args, **kwargs)
      if id(node) in reads.paths and id(result) not in reads.paths:
        reads.watch(result, reads.owner[id(node)], reads.paths[id(node)])
      return result

    cls.__getitem__ = recorded_getitem
    cls.copy_and_resolve_references = watched_copy
    for name in ("to_dict", "to_json", "to_json_best_effort"):
      setattr(cls, name, whole(originals[name]))
    try:
      yield self
    finally:
      for name, method in originals.items():
        setattr(cls, name, method)


def record_stages(reads: ConfigReads) -> None:
  """Wraps every chain stage so the config it runs on is watched under the stage's name."""
  from lmjax.chain import stages

  def watched(stage):
    def execute(config, out, dirs):
      reads.watch(config, stage.name)
      return stage.execute(config, out, dirs)
    return dataclasses.replace(stage, execute=execute)

  stages.STAGES.update({name: watched(stage) for name, stage in stages.STAGES.items()})


def main(argv: list[str]) -> None:
  out, command = argv[0], argv[1:]
  reads = ConfigReads()
  record_stages(reads)
  from lmjax import cli
  try:
    with reads.installed():
      cli.main(command[1:] if command[:1] == ["lmjax"] else command)
  finally:
    with open(out, "w") as f:
      json.dump({stage: sorted(fields) for stage, fields in reads.read.items()}, f, indent=1)


if __name__ == "__main__":
  main(sys.argv[1:])
