"""`lmjax run`: the whole chain from one config, each stage cached in a folder keyed by what decides it.

    lmjax run --config configs/speedrun_cpu.py --workdir runs/speedrun [--dry-run] [--until sft]

WORKDIR/stages/<stage>-<key>/ holds each stage's output (shared by every run given the same --stage-root),
WORKDIR/chain.json which folder each stage of this run used and how long it took, WORKDIR/config.json the
chain config, and WORKDIR/report.md the report card. Rerunning resumes: complete stages are skipped, an
interrupted one continues from its last checkpoint.

Across hosts (the multi-host flags; the stage root on a filesystem every host shares), file stages run on
process 0 while the others wait, training stages run on all of them together, and process 0 writes the
markers and the report. RL and evaluation are single-host for now: run `--until rm` on every host, then the
same `lmjax run` on one host.
"""
import contextlib
import dataclasses
import datetime
import json
import os
import time

import jax
from jax.experimental import multihost_utils

from lmjax import fs
from lmjax.chain import cache, report
from lmjax.chain.stages import (ALL_PROCESSES, DATA, NAMING, SINGLE_HOST, STAGES, WIRING, chain_stages,
                                stage_config)
from lmjax.config import ConfigError


@dataclasses.dataclass(frozen=True)
class PlannedStage:
  name: str
  key: str
  dir: str
  inputs: dict  # {input stage name: its folder}
  cached: bool


def plan(config, stage_root: str) -> list[PlannedStage]:
  """Every stage of config.chain.stages in order (the preference route's, `chain_stages`) with its key and
  folder; pure apart from checking markers."""
  unknown = [name for name in config.chain.stages if name not in STAGES]
  if unknown:
    raise ConfigError(f"config.chain.stages names unknown stages {unknown}; known: {', '.join(STAGES)}")
  planned: dict[str, PlannedStage] = {}
  for name in chain_stages(config):
    stage, own = STAGES[name], stage_config(config, name)
    needs = stage.needs(own)
    missing = [n for n in needs if n not in planned]
    if missing:
      raise ConfigError(f"stage {name} reads the output of {missing}; add them before it in "
                        "config.chain.stages")
    values = cache.field_values(own, stage.fields, WIRING + NAMING, DATA)
    key = cache.stage_key(name, values, {n: planned[n].key for n in needs})
    folder = fs.absolute(os.path.join(stage_root, f"{name}-{key}"))
    planned[name] = PlannedStage(name, key, folder, {n: planned[n].dir for n in needs}, cache.is_done(folder))
  return list(planned.values())


def describe(planned: list[PlannedStage]) -> str:
  """One line per stage: cached or to run, and its folder."""
  return "\n".join(f"  {p.name:<14}{'cached' if p.cached else 'run':<8}{p.dir}" for p in planned)


def run(config, workdir: str, *, dry_run: bool = False, until: str | None = None,
        stage_root: str | None = None) -> list[dict]:
  """Runs (or, with dry_run, only lists) every stage not already complete; writes chain.json and report.md."""
  stage_root = stage_root or os.path.join(workdir, "stages")
  planned = plan(config, stage_root)
  if until is not None and until not in [p.name for p in planned]:
    raise ConfigError(f"--until {until!r} is not a stage of config.chain.stages "
                      f"({', '.join(p.name for p in planned)})")
  lead = jax.process_index() == 0
  if lead:
    cached = sum(p.cached for p in planned)
    print(f"chain: {len(planned)} stages, {cached} cached\n{describe(planned)}", flush=True)
  if dry_run:
    return []
  if until is not None:
    planned = planned[:[p.name for p in planned].index(until) + 1]
  _check_multihost(planned)
  if lead:
    fs.makedirs(workdir)
    fs.write_text(os.path.join(workdir, "config.json"), json.dumps(config.to_dict(), indent=2, default=list))
  records = []
  for p in planned:
    records.append(_run_stage(config, p))
    if lead:
      _write_chain(workdir, config, records)
  if lead:
    report.write(workdir)
  return records


def _check_multihost(planned: list[PlannedStage]) -> None:
  """Refuses, before running anything, a multi-process chain that would reach a single-host stage."""
  single = [p.name for p in planned if not p.cached and STAGES[p.name].processes == SINGLE_HOST]
  if jax.process_count() > 1 and single:
    raise ConfigError(f"stages {single} run on one host only for now; run this chain with --until rm on "
                      "every host, then the same command on one host without the multi-host flags")


def _run_stage(config, p: PlannedStage) -> dict:
  """Runs one stage (unless complete) and marks it done; returns its chain.json record.

  On one process the stage's lock keeps a concurrent chain sharing the folder from computing it twice; across
  processes the hosts move in step instead (a barrier after every stage).
  """
  record = {"stage": p.name, "key": p.key, "dir": p.dir, "inputs": p.inputs}
  multihost, lead = jax.process_count() > 1, jax.process_index() == 0
  with contextlib.nullcontext() if multihost else cache.stage_lock(p.dir):
    if cache.is_done(p.dir):  # complete already, or completed by another chain while we waited
      return {**record, **cache.read_done(p.dir), "cached": True}
    if lead:
      print(f"chain: {p.name} -> {p.dir}", flush=True)
    started = time.time()
    if lead or STAGES[p.name].processes == ALL_PROCESSES:
      STAGES[p.name].execute(stage_config(config, p.name), p.dir, dict(p.inputs))
    if multihost:
      multihost_utils.sync_global_devices(f"chain stage {p.name}")
    done = {"seconds": round(time.time() - started, 1),
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if lead:
      cache.mark_done(p.dir, {**record, **done})
    return {**record, **done, "cached": False}


def _write_chain(workdir: str, config, records: list[dict]) -> None:
  fs.write_atomically(os.path.join(workdir, "chain.json"),
                      json.dumps({"config_hash": cache.config_hash(config), "stages": records}, indent=2))
