"""Runs a list of named checks on borrowed hardware so that one run always reports as much as it can.

Each check is `check(context) -> (line, figures)`; one that raises is recorded as FAILED with a one-line
reason and the next one runs; a check due after the time budget is SKIPPED; one still running GRACE_S after
the budget ends the process with what was measured. Every result is printed as `<prefix>: <check>: <text>`
and kept in one JSON object, rewritten after each check so that even a killed run leaves its figures.
"""
import datetime
import json
import os
import sys
import threading
import time
import traceback

GRACE_S = 60  # a check still running this long after the budget ends the process


class Checklist:
  """The run's results: a printed line per check, and all of them in one JSON object at `json_path`."""

  def __init__(self, prefix: str, json_path: str | None, budget_s: float, **facts):
    self.prefix, self.json_path, self.budget_s, self.started = prefix, json_path, budget_s, time.monotonic()
    self.lock, self.running = threading.Lock(), None
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    self.summary = {**facts, "date": date, "budget_s": budget_s, "checks": []}

  def run(self, name: str, check, context: dict) -> None:
    """Runs one check (or skips it past the budget), prints its line and records its figures."""
    if time.monotonic() - self.started >= self.budget_s:
      return self.record(name, "SKIPPED", f"the {self.budget_s:.0f} s budget was spent", {})
    self.running = name
    start = time.perf_counter()
    try:
      line, figures = check(context)
    except Exception as error:  # any failure is this check's result; the others still run
      traceback.print_exc(file=sys.stderr)
      reason = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:300]}"
      return self.record(name, "FAILED", reason, {"seconds": time.perf_counter() - start})
    finally:
      self.running = None
    self.record(name, "ok", line, figures | {"seconds": time.perf_counter() - start})

  def record(self, name: str, status: str, text: str, figures: dict) -> None:
    with self.lock:
      print(f"{self.prefix}: {name}: {text if status == 'ok' else f'{status} {text}'}", flush=True)
      self.summary["checks"].append({"check": name, "status": status, "line": text, **figures})
      self.write()

  def write(self) -> None:
    """The JSON object so far, replaced atomically (a reader never sees half a file)."""
    self.summary["elapsed_s"] = time.monotonic() - self.started
    if self.json_path:
      with open(self.json_path + ".tmp", "w") as f:
        json.dump(self.summary, f, indent=1, default=float)
      os.replace(self.json_path + ".tmp", self.json_path)

  def watch(self) -> None:
    """Ends the process (exit code 2) GRACE_S after the budget if a check is still running, recording it as
    FAILED: a hung compile must not hold the machine, nor lose the figures already measured."""
    def stop():
      with self.lock:
        if self.running:
          print(f"{self.prefix}: {self.running}: FAILED still running {GRACE_S} s after the budget; exiting",
                flush=True)
          self.summary["checks"].append({"check": self.running, "status": "FAILED", "line": "over the budget"})
          self.write()
          os._exit(2)
    timer = threading.Timer(self.budget_s + GRACE_S, stop)
    timer.daemon = True
    timer.start()

  def all_ran(self) -> bool:
    return all(c["status"] == "ok" for c in self.summary["checks"])
