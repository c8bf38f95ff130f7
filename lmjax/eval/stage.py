"""`lmjax eval`: score a run's latest checkpoint on the tasks for its kind; write eval.json and eval.md.

    lmjax eval --config configs/quickstart.py --workdir runs/eval_sft \
        --config.eval.model_workdir=runs/quickstart_sft [--config.eval.tasks="('math', 'loss')"] \
        [--harness hellaswag,arc_easy [--harness-include DIR]]

The model, its tokenizer and its architecture come from the evaluated run (its saved config); the eval
config gives the eval.* sizes and the rl.* settings of the math task (held-out seed, levels, reply lengths).
WORKDIR/eval.json is one flat dict: the run, its kind and step, the tasks, every task's numbers and the
seconds each took; eval.md is the same as a table; for a chat model, samples.md shows a few of its replies.
A task is one function `(config, run) -> dict` and one entry of TASKS; "harness" runs lm-evaluation-harness
tasks (config.eval.harness_tasks, lmjax.eval.harness_task), its numbers `harness/<task>/<metric>`.
"""
import json
import os
import time

from lmjax import fs
from lmjax.config import ConfigError
from lmjax.eval import model_run
from lmjax.eval.abstention import evaluate_abstention
from lmjax.eval.harness_task import evaluate_harness
from lmjax.eval.loss import evaluate_loss
from lmjax.eval.math_accuracy import evaluate_math
from lmjax.eval.multiple_choice import evaluate_multiple_choice
from lmjax.eval.samples import samples_markdown

TASKS = {"loss": evaluate_loss, "math": evaluate_math, "abstention": evaluate_abstention,
         "multiple_choice": evaluate_multiple_choice, "harness": evaluate_harness}
# By kind of run; "loss" runs for a chat model only when val token shards are found up its lineage.
DEFAULT_TASKS = {"base": ("loss", "multiple_choice"),
                 "chat": ("math", "abstention", "multiple_choice", "loss")}


def check_tasks(configured, harness_tasks: str = "") -> None:
  unknown = [t for t in configured if t not in TASKS]
  if unknown:
    raise ConfigError(f"config.eval.tasks has unknown task(s) {', '.join(unknown)}; use some of "
                      f"{', '.join(TASKS)}")
  if "harness" in configured and not harness_tasks.strip(" ,"):
    raise ConfigError("config.eval.tasks names 'harness' but config.eval.harness_tasks is empty; give "
                      "--harness TASK[,TASK...] (e.g. hellaswag,arc_easy)")


def choose_tasks(configured, run: model_run.ModelRun, tokens_dir: str | None,
                 harness: bool = False) -> tuple[str, ...]:
  """config.eval.tasks if set, else DEFAULT_TASKS of the run's kind; then "harness" if `harness` (some
  config.eval.harness_tasks are set) and it is not there yet."""
  if configured:
    tasks = tuple(configured)
  else:
    kind = DEFAULT_TASKS["chat" if run.chat else "base"]
    tasks = tuple(t for t in kind if t != "loss" or tokens_dir is not None)
  return tasks + ("harness",) if harness and "harness" not in tasks else tasks


def format_report(results: dict) -> str:
  """eval.json as a markdown table, one metric a row."""
  head = (f"# eval of {results['model_workdir']}\n\n{results['kind']} run, step {results['step']}; "
          f"tasks: {', '.join(results['tasks'])}\n\n| metric | value |\n| --- | --- |")
  skip = ("model_workdir", "kind", "step", "tasks", "lineage")
  rows = [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |"
          for k, v in results.items() if k not in skip]
  return "\n".join([head, *rows]) + "\n"


def evaluate(config, run: model_run.ModelRun, tasks) -> dict:
  """Every task's numbers, and `<task>_s` the seconds it took, in one flat dict."""
  out = {}
  for name in tasks:
    started = time.perf_counter()
    out |= TASKS[name](config, run)
    out[f"{name}_s"] = round(time.perf_counter() - started, 1)
    print(f"eval: {name} done in {out[f'{name}_s']:.0f} s")
  return out


def run(config, workdir: str) -> dict:
  """Evaluates config.eval.model_workdir; writes WORKDIR/eval.json, eval.md (and samples.md for chat)."""
  target = config.eval.model_workdir
  if not target:
    raise ConfigError("config.eval.model_workdir is empty; set it to the run to evaluate, e.g. runs/sft")
  check_tasks(config.eval.tasks, config.eval.harness_tasks)
  lineage = model_run.lineage(target)
  if lineage[0].kind == "rm":
    raise ConfigError(f"{target} is a reward-model run; `lmjax eval` scores base and chat models")
  started = time.perf_counter()
  loaded = model_run.load_policy(lineage[0])
  evaluated = model_run.ModelRun(loaded, lineage)
  tokens = model_run.val_tokens_dir(lineage, config.eval.tokens_dir)
  tasks = choose_tasks(config.eval.tasks, evaluated, tokens, harness=bool(config.eval.harness_tasks))
  results = {"model_workdir": lineage[0].workdir, "kind": lineage[0].kind, "step": int(loaded.step),
             "tasks": list(tasks), "lineage": [r.workdir for r in lineage]}
  results |= evaluate(config, evaluated, tasks)
  fs.makedirs(workdir)
  if evaluated.chat:
    fs.write_text(os.path.join(workdir, "samples.md"), samples_markdown(config, evaluated))
  results["eval_s"] = round(time.perf_counter() - started, 1)
  fs.write_text(os.path.join(workdir, "eval.json"), json.dumps(results, indent=2))
  report = format_report(results)
  fs.write_text(os.path.join(workdir, "eval.md"), report)
  print(report)
  return results
