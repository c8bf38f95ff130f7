"""One filesystem layer for workdirs, data and checkpoints: local paths, `file://` URLs and remote URLs
such as `gs://bucket/run`, through etils.epath (which orbax uses too).

Paths travel as strings (configs and JSON records hold them); every read, write or listing goes through
here. A `file://` URL is the local path after the prefix; any other `scheme://` URL is remote (gs:// needs
gcsfs: `pip install 'etils[epath-gcs]'`). String operations (os.path.join, basename) are the same for both.
"""
import builtins
import glob as _glob
import os
from typing import IO

from etils import epath

FILE_URL = "file://"
_WILDCARDS = "*?["


def normalize(p: str | os.PathLike) -> str:
  """`p` as a string: a file:// URL as its local path, a local path or remote URL as given."""
  p = os.fspath(p)
  return p[len(FILE_URL):] if p.startswith(FILE_URL) else p


def is_remote(p: str | os.PathLike) -> bool:
  """Whether `p` names a remote object (gs://, s3://, ...), not a local path or file:// URL."""
  return "://" in normalize(p)


def path(p: str | os.PathLike) -> epath.Path:
  """`p` as an epath.Path (what orbax's CheckpointManager takes)."""
  return epath.Path(normalize(p))


def absolute(p: str | os.PathLike) -> str:
  """`p` made absolute, to record where a run lives: a remote URL is already, a local path is joined to
  the current folder (never `./gs:/bucket/run`)."""
  p = normalize(p)
  return p if is_remote(p) else os.path.abspath(p)


def local(p: str | os.PathLike, what: str, why: str) -> str:
  """The local path of `p`, for a library that reads or writes only local files (`why`); a remote URL is
  an error naming the argument `what` (e.g. "config.data.tokens_dir")."""
  if is_remote(p):
    from lmjax.config import ConfigError  # here, not at the top: config imports this module
    raise ConfigError(f"{what}={os.fspath(p)} is remote, but {why}; set {what} to a local folder or file")
  return normalize(p)


def exists(p: str | os.PathLike) -> bool:
  return path(p).exists()


def isdir(p: str | os.PathLike) -> bool:
  return path(p).is_dir()


def isfile(p: str | os.PathLike) -> bool:
  """Whether `p` is a file (an object, remotely)."""
  return path(p).is_file()


def makedirs(p: str | os.PathLike) -> None:
  """Creates folder `p` and its parents if missing (remotely, folders exist once written under)."""
  path(p).mkdir(parents=True, exist_ok=True)


def listdir(p: str | os.PathLike) -> list[str]:
  """The names (not paths) in folder `p`, in no particular order."""
  return [child.name for child in path(p).iterdir()] if is_remote(p) else os.listdir(normalize(p))


def files_below(p: str | os.PathLike) -> list[str]:
  """The paths of every file below folder `p`, at any depth, relative to `p` (remotely one listing per
  folder: epath refuses a recursive glob)."""
  if not is_remote(p):
    root = normalize(p)
    return [os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files]
  found = []
  for child in path(p).iterdir():
    if child.is_dir():
      found += [f"{child.name}/{f}" for f in files_below(child)]
    else:
      found.append(child.name)
  return found


def glob(pattern: str) -> list[str]:
  """Paths matching `pattern`, unsorted: locally with `~` expanded and `**` recursive, as glob.glob;
  remotely with `*`, `?` and `[...]` (no `**`, which would list a whole bucket)."""
  pattern = normalize(pattern)
  if not is_remote(pattern):
    return _glob.glob(os.path.expanduser(pattern), recursive=True)
  if not any(c in pattern for c in _WILDCARDS):
    return [pattern] if exists(pattern) else []
  root, rest = split_glob(pattern)
  return [os.fspath(match) for match in epath.Path(root).glob(rest)]


def split_glob(pattern: str) -> tuple[str, str]:
  """(the folder before the first wildcard, the pattern below it): gs://b/d/x*/y -> (gs://b/d, x*/y)."""
  first = min(pattern.find(c) for c in _WILDCARDS if c in pattern)
  root, _, head = pattern[:first].rpartition("/")
  return root, head + pattern[first:]


def open(p: str | os.PathLike, mode: str = "r") -> IO:
  """Opens file `p` (text modes read and write UTF-8). Remote files take r, w and their b forms."""
  if is_remote(p):
    return path(p).open(mode)
  return builtins.open(normalize(p), mode, encoding=None if "b" in mode else "utf-8")


def read_text(p: str | os.PathLike) -> str:
  with open(p) as f:
    return f.read()


def write_text(p: str | os.PathLike, text: str) -> None:
  with open(p, "w") as f:
    f.write(text)


def write_atomically(p: str | os.PathLike, text: str) -> None:
  """Writes `text` to `p` so a reader sees the old file or the new one, never half of it: locally through
  a temporary file and a rename; remotely an object upload is already all or nothing."""
  if is_remote(p):
    write_text(p, text)
    return
  tmp = normalize(p) + ".tmp"
  write_text(tmp, text)
  os.replace(tmp, normalize(p))


def copy(source: str | os.PathLike, target: str | os.PathLike) -> None:
  """Copies file `source` to `target` (overwriting), atomically where `target` is local."""
  if is_remote(source) or is_remote(target):
    path(source).copy(path(target), overwrite=True)
    return
  tmp = normalize(target) + ".tmp"
  path(source).copy(tmp, overwrite=True)
  os.replace(tmp, normalize(target))


def rename(source: str | os.PathLike, target: str | os.PathLike) -> None:
  """Moves file or folder `source` to `target` (locally a rename; remotely a copy then a delete)."""
  path(source).rename(path(target))


def remove(p: str | os.PathLike) -> None:
  path(p).unlink()
