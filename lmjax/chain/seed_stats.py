"""Statistics over seeds, shared by the sweep's table and the speedrun's claims: one metric's mean ± std
(ddof=1) and two variants' difference paired by seed with its Student-t 95% interval."""
import numpy as np
from scipy import stats

from lmjax.chain import report


def seed_summary(values_by_seed: dict) -> dict:
  """One metric of one variant: {"values": {seed: value}, "mean", "std" (ddof=1; None below two seeds), "n"}."""
  values = np.array(list(values_by_seed.values()), dtype=float)
  n = len(values)
  return {"values": dict(values_by_seed), "mean": float(values.mean()) if n else None,
          "std": float(values.std(ddof=1)) if n > 1 else None, "n": n}


def mean_and_spread(summary: dict) -> str:
  """A seed_summary as "mean ± std" ("mean" alone below two seeds); "—" with no seeds."""
  if not summary["n"]:
    return "—"
  spread = "" if summary["std"] is None else f" ± {report.fmt(summary['std'])}"
  return f"{report.fmt(summary['mean'])}{spread}"


def paired_difference(a_by_seed: dict, b_by_seed: dict) -> dict:
  """b − a paired by seed, over the seeds both have: {"diff_mean", "diff_ci95": [low, high] (Student t with
  n−1 degrees of freedom; None below two pairs), "diff_n"}."""
  diffs = np.array([b_by_seed[s] - a_by_seed[s] for s in a_by_seed if s in b_by_seed], dtype=float)
  n = len(diffs)
  mean = float(diffs.mean()) if n else None
  if n < 2:
    return {"diff_mean": mean, "diff_ci95": None, "diff_n": n}
  half = float(stats.t.ppf(0.975, n - 1) * diffs.std(ddof=1) / np.sqrt(n))
  return {"diff_mean": mean, "diff_ci95": [mean - half, mean + half], "diff_n": n}
