"""The `lmjax clean` stage: input files -> filter tasks -> MinHash dedup stages -> final (dedup + PII) tasks.

Workdir layout (every task writes atomically, then its `.done` marker):
  filtered/NNNNN.filtered.zst   documents that passed FILTER_STEPS (+ NNNNN.stats.json)
  minhash/signatures/NNNNN.npy, minhash/buckets/BB.npy, minhash/removed_NNNNN.npy
  docs/NNNNN.jsonl.zst          the cleaned corpus (+ NNNNN.stats.json); format from config.output_format
  stats.json                    documents in/kept/removed per step with reasons and examples, unreadable input
"""
from __future__ import annotations

import glob
import json
import os
import pathlib
import time
from typing import Any

import numpy as np

from lmjax import fs
from lmjax.config import ConfigError, UserError
from lmjax.data.web import minhash, shards
from lmjax.data.web.local_executor import LocalExecutor
from lmjax.data.web.readers import InputProblems, read_documents
from lmjax.data.web.stats import StepStats, merge_task_stats, summary_table
from lmjax.data.web.steps import FILTER_STEPS, FINAL_STEPS, apply_steps, build_steps
from lmjax.data.web.tasks import Task

EXECUTORS = ("local", "ray")


def filter_task(input_paths: list[str], output: str, config) -> None:
  """Read the input files, run FILTER_STEPS, write the survivors and this task's stats."""
  problems = InputProblems()
  stats: dict[str, StepStats] = {}
  counters = {"docs_read": 0, "bytes_in": 0}
  steps = build_steps(FILTER_STEPS, config)
  for name, _ in steps:
    stats[name] = StepStats(max_examples=config.examples_per_reason)

  def documents():
    for path in input_paths:
      counters["bytes_in"] += os.path.getsize(path) if os.path.exists(path) else 0
      for doc in read_documents(path, problems, config.text_column):
        counters["docs_read"] += 1
        yield doc

  kept, _ = shards.write_documents(output, apply_steps(documents(), steps, stats), "jsonl.zst")
  shards.atomic_write_json(_stats_path(output), {
      **counters, "docs_filtered": kept, "steps": {name: step.to_json() for name, step in stats.items()},
      "input_problems": dict(problems.counts), "input_problem_examples": problems.examples})
  shards.mark_done(output)


def final_task(filtered_path: str, removed_path: str | None, output: str, config) -> None:
  """Drop the near-duplicates listed for this shard, run FINAL_STEPS (PII), write the cleaned shard."""
  removed = set(np.load(removed_path).tolist()) if removed_path else set()
  steps = build_steps(FINAL_STEPS, config)
  names = (["minhash"] if removed_path else []) + [name for name, _ in steps]
  stats = {name: StepStats(max_examples=config.examples_per_reason) for name in names}
  dedup = stats.get("minhash")

  def not_duplicated():
    for index, doc in enumerate(shards.read_documents(filtered_path)):
      if dedup is not None:
        dedup.docs_in += 1
        if index in removed:
          dedup.drop("near_duplicate", doc)
          continue
      yield doc

  written, text_bytes = shards.write_documents(output, apply_steps(not_duplicated(), steps, stats),
                                               config.output_format)
  shards.atomic_write_json(_stats_path(output), {
      "docs_written": written, "bytes_out": text_bytes, "steps": {n: s.to_json() for n, s in stats.items()}})
  shards.mark_done(output)


def _stats_path(output: str | pathlib.Path) -> pathlib.Path:
  output = pathlib.Path(output)
  return output.with_name(output.name.split(".")[0] + ".stats.json")


def _check_workdir(workdir: pathlib.Path, config, inputs: list[str]) -> None:
  """Refuse to resume into a workdir made from another config or input list (markers would lie)."""
  identity = {"config": json.loads(config.to_json()), "inputs": inputs}
  path = workdir / "run.json"
  if path.exists():
    if json.loads(path.read_text()) != identity:
      raise UserError(f"{workdir} holds a run with a different config or input list: pass a new --workdir "
                       f"(or delete {workdir}) to clean with these settings")
  else:
    shards.atomic_write_json(path, identity)


def make_executor(executor: str, ray_address: str | None, workers: int | None):
  """The executor named by --executor ("local" or "ray"), as a context manager with `.run(stage, tasks)`."""
  if executor == "ray":
    from lmjax.data.web.ray_executor import RayExecutor

    return RayExecutor(ray_address, workers)
  return LocalExecutor(workers)


def run(config, workdir, *, input_pattern: str, executor: str = "local", ray_address: str | None = None,
        workers: int | None = None) -> dict[str, Any]:
  """Clean every file matching `input_pattern` into `workdir`; returns the summary also saved as stats.json.

  Inputs and workdir are local (or file://): the cleaner's workers read, rename and delete shards in place.
  """
  started = time.perf_counter()
  local_only = "the web cleaner's workers read and write local files"
  input_pattern = fs.local(input_pattern, "--input", local_only)
  workdir = fs.local(workdir, "--workdir", local_only)
  if executor not in EXECUTORS:
    raise UserError(f"--executor={executor!r} is not one of {EXECUTORS}")
  if config.output_format not in shards.DOC_SUFFIXES:
    raise ConfigError(f"config.output_format={config.output_format!r} is not one of {sorted(shards.DOC_SUFFIXES)}")
  inputs = sorted(path for path in glob.glob(os.path.expanduser(input_pattern), recursive=True)
                  if os.path.isfile(path))
  if not inputs:
    raise FileNotFoundError(f"no input files match --input {input_pattern!r}: check the pattern and quote it "
                            "so the shell does not expand it ('data/**/*.warc.gz')")
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  _check_workdir(workdir, config, inputs)
  for leftover in workdir.rglob(".*.tmp*"):  # half-written files of a killed run: never read, now removed
    leftover.unlink()
  num_tasks = min(config.tasks or len(inputs), len(inputs))
  filtered = [str(workdir / "filtered" / f"{i:05d}.filtered.zst") for i in range(num_tasks)]
  suffix = shards.DOC_SUFFIXES[config.output_format]
  outputs = [str(workdir / "docs" / f"{i:05d}{suffix}") for i in range(num_tasks)]
  removed: list[str | None] = [None] * num_tasks
  with make_executor(executor, ray_address, workers) as tasks_executor:
    tasks_executor.run("filter", [
        Task(f"filter {i}/{num_tasks}", filtered[i], filter_task,
             dict(input_paths=inputs[i::num_tasks], output=filtered[i], config=config)) for i in range(num_tasks)])
    if config.minhash.enabled:
      removed = _run_minhash(tasks_executor, workdir / "minhash", filtered, config.minhash)
    tasks_executor.run("final", [
        Task(f"final {i}/{num_tasks}", outputs[i], final_task,
             dict(filtered_path=filtered[i], removed_path=removed[i], output=outputs[i], config=config))
        for i in range(num_tasks)])

  summary = merge_task_stats([json.loads(_stats_path(path).read_text()) for path in filtered + outputs],
                             config.examples_per_reason)
  order = [step.name for step in FILTER_STEPS + FINAL_STEPS]
  order.insert(len(FILTER_STEPS), "minhash")
  summary["steps"] = {name: summary["steps"][name] for name in order if name in summary["steps"]}
  if "minhash" in summary["steps"]:  # its drops are counted in the final tasks, its time in the dedup stages
    summary["steps"]["minhash"]["seconds"] = round(minhash.total_seconds(workdir / "minhash"), 4)
  summary.update(seconds=round(time.perf_counter() - started, 3), tasks=num_tasks, outputs=outputs)
  shards.atomic_write_json(workdir / "stats.json", summary)
  print(summary_table(summary))
  return summary


def _run_minhash(tasks_executor, directory: pathlib.Path, filtered: list[str], cfg) -> list[str]:
  """The three dedup stages; returns per shard the file listing the documents to remove."""
  signatures = [str(directory / "signatures" / f"{i:05d}.npy") for i in range(len(filtered))]
  tasks_executor.run("minhash signatures", [
      Task(f"signatures {i}", signatures[i], minhash.signatures_task,
           dict(docs_path=filtered[i], output=signatures[i], cfg=cfg)) for i in range(len(filtered))])
  buckets = [str(directory / "buckets" / f"{b:02d}.npy") for b in range(cfg.num_buckets)]
  tasks_executor.run("minhash buckets", [
      Task(f"bucket {b}", buckets[b], minhash.buckets_task,
           dict(bucket=b, signature_paths=signatures, output=buckets[b]))
      for b in range(cfg.num_buckets)])
  tasks_executor.run("minhash clusters", [
      Task("clusters", str(directory / "clusters"), minhash.clusters_task,
           dict(edge_paths=buckets, num_shards=len(filtered), output_dir=str(directory)))])
  return [str(directory / f"removed_{i:05d}.npy") for i in range(len(filtered))]
