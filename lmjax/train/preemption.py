"""Preemption: SIGTERM or SIGINT during training saves a checkpoint at the next step boundary (an iteration's,
in RL), then the run stops with Preempted and the CLI exits with EXIT_CODE; rerunning the same command
resumes exactly. A second signal stops at once, as it would without the watch.
"""
import signal
import sys
import threading

from lmjax import distributed
from lmjax.config import UserError

# EX_TEMPFAIL of sysexits.h, "try again later": told apart from an error (1) and from a kill before the
# handlers were installed (143 for SIGTERM, 130 for SIGINT), so a scheduler knows a rerun continues.
EXIT_CODE = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(UserError, RuntimeError):
  """A signal stopped the run after its checkpoint was saved; rerunning the same command resumes."""


class Watch:
  """While entered (on the main thread; elsewhere it catches nothing), notes SIGTERM and SIGINT instead of
  dying, so the loop can finish its step and save."""

  def __init__(self):
    self.signum, self.previous = None, {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self.previous = {s: signal.signal(s, self._note) for s in SIGNALS}
    return self

  def __exit__(self, *exc) -> None:
    for s, handler in self.previous.items():
      signal.signal(s, handler)
    self.previous = {}

  def _note(self, signum, frame) -> None:
    if self.signum is not None:  # the second signal: the previous handlers, now
      self.__exit__()
      signal.raise_signal(signum)
      return
    self.signum = signum
    print(f"\nlmjax: {signal.Signals(signum).name} received; saving a checkpoint after this step, then stopping "
          "(send it again to stop at once)", file=sys.stderr, flush=True)

  def requested(self) -> bool:
    """Whether any process has been signalled: a collective when there are several, so that all of them save
    the same step and stop together (call it at the same point on every process)."""
    return any(distributed.all_gather_json(self.signum is not None))

  def stop(self, what: str, workdir: str) -> Preempted:
    """The error that ends the run once its checkpoint at `what` (e.g. "step 7") is saved."""
    name = signal.Signals(self.signum).name if self.signum else "a signal on another process"
    return Preempted(f"stopped by {name} after saving the checkpoint of {what} in {workdir}/checkpoints; rerun "
                     "the same command to resume")
