"""`lmjax run`: the whole chain from one config, each stage cached in a folder keyed by what decides it.

    lmjax run --config configs/speedrun_cpu.py --workdir runs/speedrun [--dry-run] [--until sft]

WORKDIR/stages/<stage>-<key>/ holds each stage's output (shared by every run given the same --stage-root),
WORKDIR/chain.json which folder each stage of this run used and how long it took, WORKDIR/config.json the
chain config, and WORKDIR/report.md the report card. Rerunning resumes: complete stages are skipped, an
interrupted one continues from its last checkpoint.
"""
import dataclasses
import datetime
import json
import os
import time

from lmjax.chain import cache, report
from lmjax.chain.stages import DATA, STAGES, WIRING, stage_config
from lmjax.config import ConfigError


@dataclasses.dataclass(frozen=True)
class PlannedStage:
  name: str
  key: str
  dir: str
  inputs: dict  # {input stage name: its folder}
  cached: bool


def plan(config, stage_root: str) -> list[PlannedStage]:
  """Every stage of config.chain.stages in order with its key and folder; pure apart from checking markers."""
  unknown = [name for name in config.chain.stages if name not in STAGES]
  if unknown:
    raise ConfigError(f"config.chain.stages names unknown stages {unknown}; known: {', '.join(STAGES)}")
  planned: dict[str, PlannedStage] = {}
  for name in config.chain.stages:
    stage, own = STAGES[name], stage_config(config, name)
    needs = stage.needs(own)
    missing = [n for n in needs if n not in planned]
    if missing:
      raise ConfigError(f"stage {name} reads the output of {missing}; add them before it in config.chain.stages")
    values = cache.field_values(own, stage.fields, WIRING, DATA)
    key = cache.stage_key(name, values, {n: planned[n].key for n in needs})
    folder = os.path.abspath(os.path.join(stage_root, f"{name}-{key}"))
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
    raise ConfigError(f"--until {until!r} is not a stage of config.chain.stages ({', '.join(config.chain.stages)})")
  print(f"chain: {len(planned)} stages, {sum(p.cached for p in planned)} cached\n{describe(planned)}", flush=True)
  if dry_run:
    return []
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump(config.to_dict(), f, indent=2, default=list)
  records = []
  for p in planned:
    records.append(_run_stage(config, p))
    _write_chain(workdir, config, records)
    if p.name == until:
      break
  report.write(workdir)
  return records


def _run_stage(config, p: PlannedStage) -> dict:
  """Runs one stage under its lock (unless complete), marks it done; returns its chain.json record."""
  record = {"stage": p.name, "key": p.key, "dir": p.dir, "inputs": p.inputs}
  cache.acquire(p.dir)
  try:
    if cache.is_done(p.dir):  # complete already, or completed by another chain while we waited
      return {**record, **cache.read_done(p.dir), "cached": True}
    print(f"chain: {p.name} -> {p.dir}", flush=True)
    started = time.time()
    STAGES[p.name].execute(stage_config(config, p.name), p.dir, dict(p.inputs))
    done = {"seconds": round(time.time() - started, 1),
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    cache.mark_done(p.dir, {**record, **done})
    return {**record, **done, "cached": False}
  finally:
    cache.release(p.dir)


def _write_chain(workdir: str, config, records: list[dict]) -> None:
  path = os.path.join(workdir, "chain.json")
  with open(path + ".tmp", "w") as f:
    json.dump({"config_hash": cache.config_hash(config), "stages": records}, f, indent=2)
  os.replace(path + ".tmp", path)
