"""Metrics a person can plot (metrics.jsonl, TensorBoard) and the progress bar a person can watch."""
import json
import os
import time

from tqdm import tqdm

from lmjax import fs


def read_metrics(workdir: str | os.PathLike) -> list[dict]:
  """The records of WORKDIR/metrics.jsonl, whole lines only (a live run may be mid-line); [] if none."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not fs.exists(path):
    return []
  return [json.loads(line) for line in fs.read_text(path).split("\n")[:-1] if line.strip()]


class MetricsLog:
  """Appends one JSON object per logged step to `path` and mirrors scalars to TensorBoard.

  On resume, lines past the restored step (and a half-written last line, said so) are dropped first, so the
  file reads as one clean run; a resumed run's missing file is recreated with a warning. Nothing else is
  rewritten: the kept lines stay as they were. A remote object cannot be appended to, so there the whole
  file is uploaded again at most every `upload_every_s` seconds and at close (a killed run loses at most
  that much of its log, never a checkpoint).
  """

  def __init__(self, path: str, *, resume_step: int, tensorboard_dir: str | None, upload_every_s: float = 30):
    kept = [line for line in _whole_lines(path, resume_step) if json.loads(line)["step"] <= resume_step]
    self.path, self.remote, self.upload_every_s = path, fs.is_remote(path), upload_every_s
    self.lines, self.uploaded = kept, time.monotonic()
    if not self.remote:
      if not fs.exists(path) or fs.read_text(path) != "".join(kept):  # else appended to as it stands
        fs.write_atomically(path, "".join(kept))
      self.file = fs.open(path, "a")
    self.tensorboard = None
    if tensorboard_dir:
      from tensorboardX import SummaryWriter  # writes gs:// itself (through google-cloud-storage)
      self.tensorboard = SummaryWriter(fs.normalize(tensorboard_dir))

  def write(self, step: int, scalars: dict) -> None:
    line = json.dumps({"step": step, **scalars}) + "\n"
    if self.remote:
      self.lines.append(line)
      if time.monotonic() - self.uploaded >= self.upload_every_s:
        self._upload()
    else:
      self.file.write(line)
      self.file.flush()
    if self.tensorboard:
      for name, value in scalars.items():
        self.tensorboard.add_scalar(name, value, step)

  def _upload(self) -> None:
    fs.write_text(self.path, "".join(self.lines))
    self.uploaded = time.monotonic()

  def close(self) -> None:
    if self.remote:
      self._upload()
    else:
      self.file.close()
    if self.tensorboard:
      self.tensorboard.close()


def _whole_lines(path: str, resume_step: int) -> list[str]:
  """The whole non-blank lines of `path`; a half-written last line (a killed run) is left out and said so, as
  is a missing file when a run resumes (its earlier lines are lost)."""
  if not fs.exists(path):
    if resume_step:
      print(f"metrics: {path} is missing; recreating it, without the lines of steps up to {resume_step}",
            flush=True)
    return []
  lines = fs.read_text(path).splitlines(keepends=True)
  if lines and not lines[-1].endswith("\n"):
    print(f"metrics: dropping the half-written last line of {path}: {lines.pop()[:80]!r}", flush=True)
  return [line for line in lines if line.strip()]


class Progress:
  """A tqdm bar over steps showing loss, tokens/s and MFU (both measured between updates).

  A nominal peak (a chip's spec sheet) is kept as given. A measured one (CPU) is a lower bound of what the
  machine can do, so it rises to any throughput the step itself reaches: MFU stays a fraction in [0, 1].
  """

  def __init__(self, *, start: int, total: int, tokens_per_step: int, flops_per_step: float, peak_flops: float,
               peak_is_nominal: bool, enabled: bool):
    self.bar = tqdm(total=total, initial=start, desc="train", unit="step", disable=not enabled,
                    dynamic_ncols=True)
    self.tokens_per_step, self.flops_per_step = tokens_per_step, flops_per_step
    self.peak_flops, self.peak_is_nominal = peak_flops, peak_is_nominal
    self.last_time, self.last_step = time.perf_counter(), start

  def update(self, step: int, loss: float) -> dict:
    """Advances the bar to `step`; returns the throughput figures for the metrics log."""
    now = time.perf_counter()
    elapsed = max(now - self.last_time, 1e-9)
    tokens_per_s = (step - self.last_step) * self.tokens_per_step / elapsed
    achieved = (step - self.last_step) * self.flops_per_step / elapsed
    if not self.peak_is_nominal:
      self.peak_flops = max(self.peak_flops, achieved)
    mfu = achieved / self.peak_flops
    self.bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_s:,.0f}", mfu=f"{mfu:.0%}", refresh=False)
    self.bar.update(step - self.last_step)
    self.last_time, self.last_step = now, step
    return {"tokens_per_s": tokens_per_s, "mfu": mfu}

  def close(self) -> None:
    self.bar.close()
