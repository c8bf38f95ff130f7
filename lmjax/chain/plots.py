"""The report card's plots (PNG, matplotlib without a display): training curves and RL's per-iteration
panels."""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the display-less backend)

from lmjax import fs  # noqa: E402


def _series(records: list[dict], key: str) -> tuple[list, list]:
  points = [(r["step"], r[key]) for r in records if key in r and r[key] is not None]
  return [p[0] for p in points], [p[1] for p in points]


def training_curves(records: list[dict], keys: tuple[str, ...], path: str, title: str) -> str:
  """Each key against the step, losses on the left axis and anything else (accuracy, bpb) on the right."""
  fig, left = plt.subplots(figsize=(7, 3.5))
  right = None
  for key in keys:
    steps, values = _series(records, key)
    if not steps:
      continue
    axis = left if "loss" in key else (right or (right := left.twinx()))
    style = "-" if len(steps) > 20 else "o-"
    axis.plot(steps, values, style, markersize=3, label=key, color=f"C{keys.index(key)}")
  left.set_ylabel("loss")
  if right:
    right.set_ylabel(", ".join(k for k in keys if "loss" not in k))
  left.set_xlabel("step")
  left.set_title(title)
  handles = [h for axis in (left, right) if axis for h in axis.get_legend_handles_labels()[0]]
  left.legend(handles, [h.get_label() for h in handles], loc="upper right", fontsize=8)
  return _save(fig, path)


def rl_curves(records: list[dict], keys: tuple[str, ...], path: str) -> str:
  """One small panel per key against the RL iteration."""
  fig, axes = plt.subplots(2, (len(keys) + 1) // 2, figsize=(10, 5), squeeze=False)
  for axis, key in zip(axes.flat, keys):
    steps, values = _series(records, key)
    axis.plot(steps, values, "o-", markersize=3)
    axis.set_title(key, fontsize=9)
    axis.set_xlabel("iteration", fontsize=8)
  fig.tight_layout()
  return _save(fig, path)


def _save(fig, path: str) -> str:
  with fs.open(path, "wb") as f:
    fig.savefig(f, format="png", dpi=90, bbox_inches="tight")
  plt.close(fig)
  return os.path.basename(path)
