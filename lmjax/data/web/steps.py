"""The table of cleaning steps, in FineWeb's order, and how a task applies them to a stream of documents.

Each entry names a step, the config section holding its switch (`enabled`) and thresholds, and a
`build(section) -> step` function returning the pure step `doc -> Document | Drop` (built once per
task, so models and blocklists load once). MinHash dedup sits between FILTER_STEPS and FINAL_STEPS
as its own shard-parallel stages (lmjax/data/web/minhash.py).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Iterable, Iterator

from lmjax.config import ConfigError
from lmjax.data.web import c4, extract, fineweb_quality, gopher_quality, gopher_repetition, language, pii, url_filter
from lmjax.data.web.document import Document, Drop
from lmjax.data.web.stats import StepStats

StepFn = Callable[[Document], "Document | Drop"]


@dataclasses.dataclass(frozen=True)
class Step:
  name: str  # also the config section: config.<name>.enabled and its thresholds
  build: Callable[..., StepFn]


FILTER_STEPS = (
    Step("url_filter", url_filter.build),
    Step("extract", extract.build),
    Step("language", language.build),
    Step("gopher_quality", gopher_quality.build),
    Step("gopher_repetition", gopher_repetition.build),
    Step("c4", c4.build),
    Step("fineweb_quality", fineweb_quality.build),
)
FINAL_STEPS = (
    Step("pii", pii.build),
)


def build_steps(table: tuple[Step, ...], config) -> list[tuple[str, StepFn]]:
  """The enabled steps of `table`, bound to their config sections; a missing section is a clear error."""
  built = []
  for step in table:
    if step.name not in config:
      raise ConfigError(f"config has no section {step.name!r} for step {step.name!r}: add config.{step.name} "
                     "= ml_collections.ConfigDict(dict(enabled=True, ...)) to configs/clean.py")
    section = config[step.name]
    if section.enabled:
      built.append((step.name, step.build(section)))
  return built


def apply_steps(docs: Iterable[Document], steps: list[tuple[str, StepFn]],
                stats: dict[str, StepStats]) -> Iterator[Document]:
  """Run each document through the steps in order, recording keeps, drops and time per step."""
  for doc in docs:
    for name, step in steps:
      step_stats = stats.setdefault(name, StepStats())
      start = time.perf_counter()
      note = ""
      try:
        result = step(doc)
      except Exception as error:  # a step bug on one odd document must not kill the job: count and show it
        result, note = Drop(f"error_{type(error).__name__}"), f"{name} raised {type(error).__name__}: {error}"
      step_stats.seconds += time.perf_counter() - start
      step_stats.docs_in += 1
      if isinstance(result, Drop):
        step_stats.drop(result.reason, doc, note)
        break
      doc = result
    else:
      yield doc
