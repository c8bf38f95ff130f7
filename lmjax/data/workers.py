"""Worker processes that never outlive their parent: `die_with_parent(os.getpid())` as a pool's initializer.

A pool's workers otherwise wait forever on their task queue once the parent is killed (kill -9 included),
holding memory and half-written files. On Linux the kernel kills them with the parent (PR_SET_PDEATHSIG);
elsewhere, and as a backstop, a thread in each worker exits it once its parent process id changes.
PR_SET_PDEATHSIG fires when the *thread* that started the worker ends, so start pools from a thread that
outlives them (the stages start theirs from the main thread).
"""
import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 1.0


def die_with_parent(parent_pid: int) -> None:
  """In a worker: arrange to exit when process `parent_pid` (the pool's owner, passed in by it) dies."""
  if sys.platform.startswith("linux"):
    _kill_me_with_parent()
  if os.getppid() != parent_pid:  # the parent died before the line above took effect
    os._exit(1)
  threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True, name="die-with-parent").start()


def _kill_me_with_parent() -> None:
  try:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
  except (OSError, AttributeError):  # no prctl in this libc: the thread still ends an orphan
    pass


def _exit_when_orphaned(parent_pid: int) -> None:
  while os.getppid() == parent_pid:
    time.sleep(POLL_SECONDS)
  os._exit(1)  # not sys.exit: that would only end this thread
