"""The speedrun's claims, per seed: does every stage help on every seed? A table for a seeded sweep's sweep.md.

Each claim is a headline metric (or a difference of two, paired by seed) with the target the chain should
meet; a row shows every seed's value, the mean ± std, and whether every seed met the target. Claims whose
metrics no run has (another chain, a sweep still running) are left out.
"""
import dataclasses
import os

from lmjax import fs
from lmjax.chain import report
from lmjax.chain.seed_stats import mean_and_spread, seed_summary
from lmjax.data.posttrain.math_problems import LEVELS


@dataclasses.dataclass(frozen=True)
class Claim:
  label: str
  metric: str  # a headline key, or "A - B" for a difference of two
  target: float | None  # the value every seed should reach (None: reported only)
  at_most: bool = False  # the target is an upper bound


CLAIMS = (
    Claim("SFT math pass@1", "eval_sft.math_pass1", 0.60),
    Claim("SFT math greedy", "eval_sft.math_greedy", 0.80),
    Claim("RL math pass@1", "eval_rl.math_pass1", None),
    Claim("RL − SFT pass@1", "eval_rl.math_pass1 - eval_sft.math_pass1", 0.05),
    Claim("SFT − RL greedy", "eval_sft.math_greedy - eval_rl.math_greedy", 0.02, at_most=True),
    *(claim for level in sorted(LEVELS) for claim in (
        Claim(f"SFT math pass@1, level {level}", f"eval_sft.math_pass1_level{level}", None),
        Claim(f"RL − SFT pass@1, level {level}",
              f"eval_rl.math_pass1_level{level} - eval_sft.math_pass1_level{level}", None))),
    Claim("RL KL to the SFT model", "rl.kl_ref", None),
    Claim("RL response length (tokens, last iteration)", "rl.response_length", None),
    Claim("RM accuracy: wrong final answer", "rm.rm_accuracy_wrong_answer", 0.90),
    Claim("RM accuracy: wrong step", "rm.rm_accuracy_wrong_step", 0.90),
    Claim("RM accuracy: refusal", "rm.rm_accuracy_refusal", 0.90),
    Claim("SFT abstains on invented entities", "eval_sft.abstention_rate", 0.80),
    Claim("SFT answers from the prompt", "eval_sft.context_accuracy", 0.80),
    Claim("SFT arithmetic", "eval_sft.answerable_accuracy_arithmetic", None),
    Claim("SFT names itself", "eval_sft.identity_accuracy", None),
    Claim("RL abstains on invented entities", "eval_rl.abstention_rate", None),
    Claim("RL answers from the prompt", "eval_rl.context_accuracy", None),
)


def value(headline: dict, metric: str) -> float | None:
  """A claim's value in one run's headline: the metric, or the difference "A - B"; None if one is missing."""
  a, _, b = metric.partition(" - ")
  if a not in headline or (b and b not in headline):
    return None
  return headline[a] - headline[b] if b else headline[a]


def _met(claim: Claim, values: list[float]) -> str:
  if claim.target is None:
    return ""
  ok = all((v <= claim.target) if claim.at_most else (v >= claim.target) for v in values)
  return f"{'yes' if ok else 'no'} ({'≤' if claim.at_most else '≥'} {report.fmt(claim.target)})"


def claims_table(headlines: dict[int, dict]) -> str | None:
  """{seed: headline} -> a markdown table of each claim per seed, mean ± std and "met on every seed"."""
  seeds, rows = sorted(headlines), []
  for claim in CLAIMS:
    by_seed = {s: value(headlines[s], claim.metric) for s in seeds}
    known = {s: v for s, v in by_seed.items() if v is not None}
    if not known:
      continue
    summary = seed_summary(known)
    rows.append([claim.label, *by_seed.values(), mean_and_spread(summary), _met(claim, list(known.values()))])
  if not rows:
    return None
  return report.table(["claim", *[f"seed {s}" for s in seeds], "mean ± std", "every seed"], rows)


def samples_section(run_dirs: dict[int, str]) -> list[str]:
  """Each seed's final chat model's sample conversations (its eval_rl stage's samples.md, else eval_sft's)."""
  lines = []
  for seed, run in sorted(run_dirs.items()):
    dirs = report.stage_dirs(run)
    for stage in ("eval_rl", "eval_sft"):
      path = os.path.join(dirs.get(stage, ""), "samples.md")
      if stage in dirs and fs.exists(path):
        lines += ["", f"### Seed {seed}: {stage.removeprefix('eval_')} model", "", fs.read_text(path).strip()]
        break
  return lines
