"""Concurrent requests gathered into batches of the one inference engine (`lmjax.infer.engine`).

One thread owns the engine; it first compiles the engine's programs (`warm_up`) while the server already
answers, so the first request need not wait for them. When a request arrives it waits `window_s` for others,
then runs everything that has arrived: requests that sample alike (chat or completion, temperature, top-p, top-k) go through one
`Engine.generate` call, their choices continuously batched through its slots, each with its own seed and
reply budget. Requests arriving meanwhile wait for the next batch (at most `max_waiting` of them; one more is
refused, HTTP 503). Each choice's reply is reported as it grows (`on_tokens`) and when it is done, to its
request's `sink`; a request whose client went away (`cancelled`) ends its replies at the next step.
"""
import dataclasses
import queue
import sys
import threading
import time
from collections.abc import Callable

from lmjax.serve.openai_shapes import overloaded
from lmjax.serve.reply_text import ReplyText


@dataclasses.dataclass(frozen=True)
class Sampling:
  """What requests must share to be one engine call."""
  kind: str  # "chat" (the chat protocol, tools) or "completion" (plain text to <|eos|>)
  temperature: float
  top_p: float
  top_k: int


@dataclasses.dataclass
class Job:
  """One API request: one prompt per choice with its seed and reply budget; `sink` gets its progress:
  ("tokens", choice, Shown) as a reply grows, ("reply", choice, Reply, Shown) when it is done, ("error", e)."""
  sampling: Sampling
  prompts: list[list[int]]
  seeds: list[int]
  reply_tokens: list[int]
  text: ReplyText
  sink: Callable[[tuple], None]
  cancelled: threading.Event = dataclasses.field(default_factory=threading.Event)

  def grew(self, choice: int, ids) -> bool:
    """Reports the choice's reply so far; True ends it (its client left, or a stop string appeared)."""
    shown = self.text.shown(ids, final=False)
    self.sink(("tokens", choice, shown))
    return self.cancelled.is_set() or shown.stopped

  def done(self, choice: int, reply) -> None:
    self.sink(("reply", choice, reply, self.text.shown(reply.reply, final=True)))


class Batcher:
  """The engine's thread and the queue of requests waiting for it (see the module docstring)."""

  def __init__(self, make_engine: Callable[[Sampling], object], *, window_s: float, max_waiting: int,
               warm_up: Sampling | None = None):
    self.make_engine, self.window_s, self.max_waiting, self.warm_up = make_engine, window_s, max_waiting, warm_up
    self.waiting: queue.Queue = queue.Queue()
    self.batch_sizes: list[int] = []  # requests per engine call, for tests and logs
    self.thread = threading.Thread(target=self._serve, name="lmjax-engine", daemon=True)

  def start(self) -> None:
    self.thread.start()

  def stop(self) -> None:
    self.waiting.put(None)
    self.thread.join()

  def submit(self, job: Job) -> None:
    waiting = self.waiting.qsize()
    if waiting >= self.max_waiting:
      raise overloaded(waiting)
    self.waiting.put(job)

  def _serve(self) -> None:
    if self.warm_up:  # compile the engine's programs before the first request needs them
      try:
        self.make_engine(self.warm_up).generate([[0]], reply_tokens=[1])
      except Exception as e:  # noqa: BLE001 (the requests will meet the same error, each with a reply)
        print(f"lmjax serve: warming up the engine failed: {type(e).__name__}: {e}", file=sys.stderr)
    while True:
      first = self.waiting.get()
      if first is None:
        return
      time.sleep(self.window_s)
      jobs, stopping = [first], False
      while not self.waiting.empty():
        job = self.waiting.get_nowait()
        stopping = stopping or job is None
        if job is not None:
          jobs.append(job)
      groups: dict[Sampling, list[Job]] = {}
      for job in jobs:
        groups.setdefault(job.sampling, []).append(job)
      for sampling, group in groups.items():
        self._run(sampling, [job for job in group if not job.cancelled.is_set()])
      if stopping:
        return

  def _run(self, sampling: Sampling, jobs: list[Job]) -> None:
    """One engine call for every choice of `jobs`; an error goes to each job rather than ending the thread."""
    if not jobs:
      return
    rows = [(job, choice) for job in jobs for choice in range(len(job.prompts))]
    self.batch_sizes.append(len(jobs))
    try:
      self.make_engine(sampling).generate(
          [job.prompts[c] for job, c in rows], [job.seeds[c] for job, c in rows],
          reply_tokens=[job.reply_tokens[c] for job, c in rows],
          on_tokens=lambda index, ids: rows[index][0].grew(rows[index][1], ids),
          on_reply=lambda index, reply: rows[index][0].done(rows[index][1], reply))
    except Exception as e:  # noqa: BLE001 (one batch's failure must not stop the server)
      for job in jobs:
        job.sink(("error", e))
