"""One writer per folder: FOLDER/.lock, a file created exclusively holding "<host> <pid>" of its holder.

A training stage's Workdir refuses a folder another live process holds, naming it; `lmjax run` waits for a
stage folder instead (two chains sharing a stage compute it once). A lock left by a dead process on this
host is taken over. A lock this process already holds is held again without being taken, so a chain's
stage lock and the stage's own Workdir lock are one lock. Local folders only: an object store cannot
create a file exclusively.
"""
import contextlib
import os
import socket
import time

from lmjax.config import UserError

LOCK = ".lock"


class LockedError(UserError, RuntimeError):
  """Another live process is writing the folder."""


def acquire(folder: str, *, wait: bool, poll_seconds: float = 10.0, who: str = "lmjax") -> bool:
  """Takes FOLDER's lock: True if taken now, False if this process held it already. Another live holder
  makes it wait (saying once per holder who holds it) or, with `wait=False`, raise LockedError naming it."""
  os.makedirs(folder, exist_ok=True)
  path, me, announced = os.path.join(folder, LOCK), _me(), None
  while True:
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
      os.write(fd, me.encode())
      os.close(fd)
      return True
    except FileExistsError:
      holder = _read(path)
      if holder == me:
        return False
      if _dead(holder, path):
        print(f"{who}: taking over {path}, left by process {holder or '(unreadable)'} which is gone", flush=True)
        with contextlib.suppress(FileNotFoundError):
          os.remove(path)
        continue
      if not wait:
        raise LockedError(f"{folder} is in use by process {holder} (lock file {path}); wait for it to finish, "
                          "stop it or use another --workdir (if that process is gone, delete the lock file)")
      if holder != announced:
        print(f"{who}: waiting for {folder} (locked by {holder})", flush=True)
        announced = holder
      time.sleep(poll_seconds)


def release(folder: str) -> None:
  """Removes FOLDER's lock if this process holds it."""
  path = os.path.join(folder, LOCK)
  if _read(path) == _me():
    with contextlib.suppress(FileNotFoundError):
      os.remove(path)


@contextlib.contextmanager
def held(folder: str, *, wait: bool = False, who: str = "lmjax"):
  """FOLDER's lock for the block; released after it unless this process held it before. A folder the lock
  created is removed again if the block left nothing in it (a command that failed before writing)."""
  created = not os.path.exists(folder)
  taken = acquire(folder, wait=wait, who=who)
  try:
    yield
  finally:
    if taken:
      release(folder)
    if created and os.path.isdir(folder) and not os.listdir(folder):
      os.rmdir(folder)


def _me() -> str:
  return f"{socket.gethostname()} {os.getpid()}"


def _read(path: str) -> str:
  try:
    with open(path) as f:
      return f.read()
  except FileNotFoundError:
    return ""


def _dead(holder: str, path: str) -> bool:
  """Whether the lock's holder is a process of this host that no longer runs (another host's: unknown); an
  empty lock file older than a minute was left by a process killed between creating and writing it."""
  if not holder:
    return _age_s(path) > 60
  host, _, pid = holder.partition(" ")
  if host != socket.gethostname() or not pid.isdigit():
    return False
  try:
    os.kill(int(pid), 0)
  except ProcessLookupError:
    return True
  except PermissionError:
    return False
  return False


def _age_s(path: str) -> float:
  try:
    return time.time() - os.stat(path).st_mtime
  except FileNotFoundError:
    return 0.0
