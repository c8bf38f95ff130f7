"""The `harness` task of `lmjax eval`: lm-evaluation-harness tasks (config.eval.harness_tasks) on the run's model.

    lmjax eval --config configs/base.py --workdir runs/eval --config.eval.model_workdir=runs/sft \
        --harness hellaswag,arc_easy [--harness-include DIR]

Each task's scores land in eval.json as `harness/<task>/<metric>` (lm_eval's metric names; a filter other
than "none" follows a comma, as lm_eval writes it: `exact_match,strict-match`), with `<metric>_stderr`
beside them. `harness/core_centered` is the CORE-style average nanochat reports (from DCLM): per task asked
for, its accuracy centered on chance, (acc - chance) / (1 - chance), averaged over the tasks; chance is
the mean of 1 / (number of choices) over the task's documents (a group's: over all its documents), and
only tasks that report `acc` count (a group that reports none counts its members). lm_eval is imported here only when the task runs.
"""
import difflib

from lmjax.config import ConfigError, UserError

CORE_METRIC = "acc"


def task_names(text: str) -> list[str]:
  """config.eval.harness_tasks ("a,b") as a list of names."""
  return [name.strip() for name in text.split(",") if name.strip()]


def _lm_eval():
  try:
    import lm_eval
    import lm_eval.tasks
  except ImportError:
    raise UserError("lm-evaluation-harness is not installed; `pip install -e .[harness]` (lm-eval) to run "
                    "config.eval.harness_tasks") from None
  return lm_eval


def task_manager(names: list[str], include: str):
  """The harness's task index: the folder `include` alone when it defines every named task (indexing the
  thousands of built-in tasks takes seconds), else the built-in tasks and `include`; unknown names are an
  error naming the field."""
  lm_eval = _lm_eval()
  if include:
    local = lm_eval.tasks.TaskManager(include_path=include, include_defaults=False)
    if all(name in local.all_tasks for name in names):
      return local
  manager = lm_eval.tasks.TaskManager(include_path=include or None)
  unknown = [name for name in names if name not in manager.all_tasks]
  if unknown:
    hints = {n: difflib.get_close_matches(n, manager.all_tasks, n=3) for n in unknown}
    said = "; ".join(f"{n!r}" + (f" (did you mean {', '.join(h)}?)" if h else "") for n, h in hints.items())
    where = f"the built-in tasks or {include}" if include else "the built-in tasks (`lm_eval ls tasks`)"
    raise ConfigError(f"config.eval.harness_tasks names task(s) not in {where}: {said}; for a task of your "
                      "own give its YAML's folder with --harness-include DIR (config.eval.harness_include)")
  return manager


def metric_scores(results: dict) -> dict:
  """lm_eval's results (its simple_evaluate output) as {"harness/<task>/<metric>": value}, numbers only."""
  out = {}
  for task, metrics in {**results["results"], **results.get("groups", {})}.items():
    for key, value in metrics.items():
      if "," not in key or not isinstance(value, (int, float)) or isinstance(value, bool):
        continue  # "alias", "samples"; a stderr lm_eval could not compute is the string "N/A"
      metric, filter_name = key.split(",", 1)
      name = metric if filter_name == "none" else f"{metric},{filter_name}"
      out[f"harness/{task}/{name}"] = float(value)
  return out


def chance_levels(results: dict) -> dict[str, float]:
  """{task: mean of 1 / choices over its documents} for every multiple-choice task and group, from the
  logged samples (each multiple-choice document makes one request per choice)."""
  counts = {}
  for task, samples in results.get("samples", {}).items():
    if results["configs"][task].get("output_type") == "multiple_choice" and samples:
      counts[task] = [1 / len(s["arguments"]) for s in samples]
  def documents(task):
    if task in counts:
      return counts[task]
    return [c for sub in results.get("group_subtasks", {}).get(task, []) for c in documents(sub)]
  names = set(counts) | set(results.get("group_subtasks", {}))
  return {task: sum(d) / len(d) for task in names if (d := documents(task))}


def top_level(results: dict) -> list[str]:
  """The tasks and groups the run was asked for: those no group lists as its subtask."""
  subtasks = {sub for subs in results.get("group_subtasks", {}).values() for sub in subs}
  return [t for t in {**results["results"], **results.get("groups", {})} if t not in subtasks]


def core_members(results: dict, names: list[str]) -> list[str]:
  """The tasks the CORE-style average counts: each named task or group that reports acc; a group that
  does not (lm_eval aggregates only some) counts its members instead."""
  scores, children = {**results["results"], **results.get("groups", {})}, results.get("group_subtasks", {})
  out = []
  for name in names:
    if f"{CORE_METRIC},none" in scores.get(name, {}):
      out.append(name)
    elif name in children:
      out += core_members(results, children[name])
  return out


def core_centered(results: dict) -> dict:
  """{"harness/core_centered": mean centered accuracy, "harness/core_tasks": how many tasks it averages},
  or {} when no task reports acc with a known chance level."""
  chance, scores = chance_levels(results), {**results["results"], **results.get("groups", {})}
  members = [t for t in core_members(results, top_level(results)) if t in chance and chance[t] < 1]
  centered = [(scores[t][f"{CORE_METRIC},none"] - chance[t]) / (1 - chance[t]) for t in members]
  if not centered:
    return {}
  return {"harness/core_centered": sum(centered) / len(centered), "harness/core_tasks": len(centered)}


def run_harness(config, loaded, *, chat_format: bool = False) -> dict:
  """lm_eval's simple_evaluate of config.eval.harness_* on the loaded model (its samples logged); a chat model
  (`chat_format`) reads each prompt in lmjax's chat format, its few-shot examples as earlier turns."""
  names = task_names(config.eval.harness_tasks)
  if not names:
    raise ConfigError("config.eval.harness_tasks is empty; give --harness TASK[,TASK...] (e.g. hellaswag)")
  lm_eval = _lm_eval()
  from lmjax.eval.harness import HarnessLM
  e = config.eval
  return lm_eval.simple_evaluate(
      model=HarnessLM(loaded, batch_size=e.harness_batch_size, chat_format=chat_format), tasks=names,
      task_manager=task_manager(names, e.harness_include),
      num_fewshot=None if e.harness_fewshot < 0 else e.harness_fewshot, limit=e.harness_limit or None,
      log_samples=True, random_seed=e.seed, numpy_random_seed=e.seed, fewshot_random_seed=e.seed,
      torch_random_seed=None,  # lmjax draws nothing from torch
      apply_chat_template=chat_format, fewshot_as_multiturn=chat_format)


def evaluate_harness(config, run) -> dict:
  """`harness/<task>/<metric>` for every task of config.eval.harness_tasks, and the CORE-style average; a chat
  model (SFT, DPO, RL) is prompted in its chat format, as lmjax's own multiple-choice task prompts it."""
  results = run_harness(config, run.loaded, chat_format=run.chat)
  return metric_scores(results) | core_centered(results)
