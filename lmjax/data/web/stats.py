"""Counts every step and task records, merged into DIR/stats.json and printed as the summary table."""
from __future__ import annotations

import collections
import dataclasses
from typing import Any

from lmjax.data.web.document import Document

EXAMPLE_CHARS = 200


@dataclasses.dataclass
class StepStats:
  """One step's documents in, drops by reason (with a few example ids and snippets) and time spent."""

  docs_in: int = 0
  seconds: float = 0.0
  dropped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  examples: dict[str, list[dict[str, str]]] = dataclasses.field(default_factory=dict)
  max_examples: int = 3

  def drop(self, reason: str, doc: Document, note: str = "") -> None:
    self.dropped[reason] += 1
    examples = self.examples.setdefault(reason, [])
    if len(examples) < self.max_examples:
      example = {"id": doc.id, "url": doc.url, "text": doc.text[:EXAMPLE_CHARS]}
      examples.append({**example, "note": note} if note else example)

  def to_json(self) -> dict[str, Any]:
    removed = sum(self.dropped.values())
    return {"docs_in": self.docs_in, "kept": self.docs_in - removed, "removed": removed,
            "reasons": dict(self.dropped.most_common()), "seconds": round(self.seconds, 4),
            "examples": self.examples}

  @classmethod
  def from_json(cls, row: dict[str, Any]) -> StepStats:
    return cls(docs_in=row["docs_in"], seconds=row["seconds"], dropped=collections.Counter(row["reasons"]),
               examples=row["examples"])

  def merge(self, other: StepStats) -> None:
    self.docs_in += other.docs_in
    self.seconds += other.seconds
    self.dropped.update(other.dropped)
    for reason, examples in other.examples.items():
      mine = self.examples.setdefault(reason, [])
      mine.extend(examples[:max(0, self.max_examples - len(mine))])


def merge_task_stats(task_stats: list[dict[str, Any]], max_examples: int = 3) -> dict[str, Any]:
  """Sum per-task stats ({"steps": {name: StepStats json}, "input_problems": ..., counters}) into one."""
  steps: dict[str, StepStats] = {}
  problems: collections.Counter = collections.Counter()
  problem_examples: dict[str, list[str]] = {}
  totals: collections.Counter = collections.Counter()
  for stats in task_stats:
    for name, row in stats.get("steps", {}).items():
      steps.setdefault(name, StepStats(max_examples=max_examples)).merge(StepStats.from_json(row))
    problems.update(stats.get("input_problems", {}))
    for kind, message in stats.get("input_problem_examples", {}).items():
      problem_examples.setdefault(kind, [])
      if len(problem_examples[kind]) < max_examples:
        problem_examples[kind].append(message)
    totals.update({key: value for key, value in stats.items() if isinstance(value, (int, float))})
  return {**dict(totals), "steps": {name: step.to_json() for name, step in steps.items()},
          "input_problems": dict(problems), "input_problem_examples": problem_examples}


def summary_table(summary: dict[str, Any]) -> str:
  """A plain-text table: per step, documents in, kept, removed, docs/s and the top drop reasons."""
  header = f"{'step':20s} {'in':>9s} {'kept':>9s} {'removed':>9s} {'docs/s':>9s}  top reasons"
  rows = [header, "-" * len(header)]
  for name, step in summary["steps"].items():
    rate = step["docs_in"] / step["seconds"] if step["seconds"] > 0 else float("inf")
    reasons = ", ".join(f"{reason} {count}" for reason, count in list(step["reasons"].items())[:3])
    rows.append(f"{name:20s} {step['docs_in']:9d} {step['kept']:9d} {step['removed']:9d} {rate:9.0f}  {reasons}")
  problems = summary.get("input_problems", {})
  rows.append(f"unreadable input: {sum(problems.values())}" +
              (" (" + ", ".join(f"{kind} {count}" for kind, count in problems.items()) + ")" if problems else ""))
  rows.append(f"documents read {summary.get('docs_read', 0)}, written {summary.get('docs_written', 0)}; "
              f"bytes in {summary.get('bytes_in', 0):,}, out {summary.get('bytes_out', 0):,}; "
              f"{summary.get('seconds', 0):.1f} s")
  return "\n".join(rows)
