"""The report card of a chain run (WORKDIR/report.md + PNG plots), and two runs side by side.

    lmjax report runs/speedrun               (re)writes runs/speedrun/report.md
    lmjax report runs/A runs/B               prints the runs' metrics side by side and the config differences

Reads only what the stages wrote (chain.json, stats.json, *_summary.json, metrics.jsonl, eval.json), so it
can be rerun at any time, also on a chain that is still running.
"""
import json
import os
import subprocess

from lmjax import fs
from lmjax.chain import plots
from lmjax.chain.stages import ROUTES
from lmjax.infer import probe
from lmjax.model import ModelConfig, flops_per_token
from lmjax.train.metrics import read_metrics

EVAL_STAGES = ("eval_pretrain", "eval_sft", "eval_rl", "eval_dpo")
# Each preference route's evaluation of its final policy: headline's `final.<metric>`, one name for both routes,
# so a sweep over chain.preference pairs them.
FINAL_EVALS = tuple(evaluation for _, (evaluation,) in ROUTES.values())


def _load(path: str, default=None):
  return json.loads(fs.read_text(path)) if fs.exists(path) else default


def run_name(workdir: str) -> str:
  """The run's folder name (`run` of runs/run, /abs/runs/run/ or gs://bucket/runs/run)."""
  return os.path.basename(fs.absolute(workdir).rstrip("/"))


def _relative(folder: str, workdir: str) -> str:
  """`folder` relative to `workdir` when both are local; a URL (or a folder elsewhere) as it is."""
  if fs.is_remote(folder) or fs.is_remote(workdir):
    inside = folder.startswith(workdir.rstrip("/") + "/")
    return folder[len(workdir.rstrip("/")) + 1:] if inside else folder
  return os.path.relpath(fs.normalize(folder), fs.normalize(workdir))


def last(records: list[dict], key: str):
  values = [r[key] for r in records if key in r]
  return values[-1] if values else None


def median(records: list[dict], key: str):
  values = sorted(r[key] for r in records[1:] if key in r)  # the first step includes compilation
  return values[len(values) // 2] if values else None


def _probe_report(stage_dir: str) -> dict:
  """The probe stage's probe_report.json ({} before it has written one): the headline's and the section's."""
  return _load(os.path.join(stage_dir, probe.REPORT_FILE), {})


def stage_dirs(workdir: str) -> dict[str, str]:
  """{stage name: folder} of the run, from its chain.json."""
  chain = _load(os.path.join(workdir, "chain.json"), {"stages": []})
  return {s["stage"]: s["dir"] for s in chain["stages"]}


def headline(workdir: str) -> dict[str, float]:
  """The run's main numbers as {"stage.metric": value}: what `lmjax report A B` and sweeps compare."""
  dirs, out = stage_dirs(workdir), {}
  if "clean" in dirs:
    stats = _load(os.path.join(dirs["clean"], "stats.json"), {})
    out |= {"clean.docs_read": stats.get("docs_read"), "clean.docs_written": stats.get("docs_written")}
  if "tokenizer" in dirs:
    summary = _load(os.path.join(dirs["tokenizer"], "tokenizer_summary.json"), {})
    out["tokenizer.held_out_bytes_per_token"] = summary.get("held_out_bytes_per_token")
  if "tokenize" in dirs:
    out["tokenize.train_tokens"] = _load(os.path.join(dirs["tokenize"], "tokens", "summary.json"),
                                         {}).get("train", {}).get("tokens")
  if "probe" in dirs:
    probed = _probe_report(dirs["probe"])
    out |= {"probe.accuracy": probed.get("probe", {}).get("accuracy"),
            "probe.dont_know_conversations": probed.get("dont_know_conversations"),
            "probe.known_conversations": probed.get("known_conversations")}
  final_keys = {"pretrain": ("val_loss", "val_bpb"), "sft": ("val_loss",), "rm": ("val_accuracy",),
                "rl": ("reward", "heldout_pass1", "heldout_pass_at_g", "heldout_greedy", "kl_ref",
                       "response_length"),
                "dpo": ("val_loss", "val_accuracy", "val_margin")}
  for stage, keys in final_keys.items():
    if stage in dirs:
      records = read_metrics(dirs[stage])
      out |= {f"{stage}.{k}": last(records, k) for k in keys}
      if stage == "pretrain":
        out |= {f"pretrain.{k}": median(records, k) for k in ("tokens_per_s", "mfu")}
  for stage in ("rm", "dpo"):
    if stage in dirs:
      summary = _load(os.path.join(dirs[stage], "summary.json"), {})
      out |= {f"{stage}.{k}": v for k, v in summary.items() if k.startswith(f"{stage}_accuracy_")}
  for stage in EVAL_STAGES:
    if stage in dirs:
      results = _load(os.path.join(dirs[stage], "eval.json"), {})
      numbers = {k: v for k, v in results.items() if isinstance(v, (int, float))}
      out |= {f"{stage}.{k}": v for k, v in numbers.items()}
      out |= {f"final.{k}": v for k, v in numbers.items()} if stage in FINAL_EVALS else {}
  return {k: v for k, v in out.items() if v is not None}


def stage_flops(workdir: str) -> dict[str, float]:
  """Model FLOPs per training stage: what the supervised loops counted per step (their summary.json) times
  the steps; for RL, its epochs of training on the rows plus one forward pass per rescored (policy,
  reference) and generated token."""
  dirs, flops = stage_dirs(workdir), {}
  for stage in ("pretrain", "sft", "rm", "dpo"):  # (dpo's one reference pass over its pairs is left out)
    summary = _load(os.path.join(dirs.get(stage, ""), "summary.json"), {})
    if "model_flops_per_step" in summary:
      flops[stage] = summary["model_flops_per_step"] * summary["steps"]
  if "rl" in dirs:
    config = _load(os.path.join(dirs["rl"], "config.json"), {})
    iterations = [r for r in read_metrics(dirs["rl"]) if "response_length" in r]
    if config and iterations:
      seq_len = config["train"]["seq_len"]
      per_token = flops_per_token(ModelConfig.from_config(config["model"]), seq_len)
      rows = config["rl"]["prompts_per_iteration"] * config["rl"]["group_size"]
      trained = len(iterations) * rows * seq_len
      generated = sum(rows * r["response_length"] for r in iterations)
      flops["rl"] = per_token * trained * config["rl"]["epochs"] + per_token / 3 * (2 * trained + generated)
  return flops


def fmt(value) -> str:
  """A table cell: 4 significant digits for floats, thousands separators for ints, — for a missing value."""
  if value is None:
    return "—"
  if isinstance(value, float):
    return f"{value:.3g}" if abs(value) >= 1e6 else f"{value:.4g}"
  return f"{value:,}" if isinstance(value, int) else str(value)


def table(header: list[str], rows: list[list]) -> str:
  """A markdown table; cells go through fmt (a str cell is written as it is)."""
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  return "\n".join(lines + ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows])


def _commit() -> str:
  try:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                          cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def _clean_section(stage_dir: str) -> list[str]:
  stats = _load(os.path.join(stage_dir, "stats.json"), {})
  steps = sorted(stats.get("steps", {}).items(), key=lambda kv: -kv[1]["docs_in"])
  rows = [[name, s["docs_in"], s["kept"], s["removed"],
           ", ".join(f"{r} {n}" for r, n in sorted(s["reasons"].items(), key=lambda kv: -kv[1])[:3])]
          for name, s in steps]
  return ["## Web data (clean)",
          f"{fmt(stats.get('docs_read'))} documents read, {fmt(stats.get('docs_written'))} kept; "
          f"{fmt(stats.get('bytes_in'))} bytes in, {fmt(stats.get('bytes_out'))} out.", "",
          table(["step", "in", "kept", "removed", "top reasons"], rows)]


def _tokenizer_section(dirs: dict) -> list[str]:
  summary = _load(os.path.join(dirs.get("tokenizer", ""), "tokenizer_summary.json"), {})
  splits = _load(os.path.join(dirs.get("tokenize", ""), "tokens", "summary.json"), {})
  rows = [[split, s["documents"], s["tokens"], s["bytes_per_token"]] for split, s in splits.items()]
  return ["## Tokenizer", f"Vocabulary {fmt(summary.get('vocab_size'))} (BPE, byte fallback, "
          f"{len(summary.get('special_tokens', []))} special tokens); held-out bytes per token "
          f"{fmt(summary.get('held_out_bytes_per_token'))}.", "",
          table(["split", "documents", "tokens", "bytes/token"], rows)]


def _training_section(title: str, stage: str, stage_dir: str, workdir: str,
                      keys: tuple[str, ...]) -> list[str]:
  records = read_metrics(stage_dir)
  if not records:
    return [f"## {title}", "(no metrics yet)"]
  image = plots.training_curves(records, keys, os.path.join(workdir, f"{stage}.png"), title)
  finals = [f"{k} {fmt(last(records, k))}" for k in keys if last(records, k) is not None]
  speed = [f"{k} {fmt(median(records, k))} (median)" for k in ("tokens_per_s", "mfu") if median(records, k)]
  return [f"## {title}", f"{last(records, 'step')} steps; final " + ", ".join(finals + speed) + ".", "",
          f"![{title}]({image})"]


def _probe_section(stage_dir: str) -> list[str]:
  """The knowledge probe of the pretrained model: accuracy per kind and the "I don't know" data it wrote."""
  probed = _probe_report(stage_dir)
  if not probed:
    return ["## Knowledge probe", "(no probe report yet)"]
  sets = [("probe", probed["probe"]), ("held out", probed["heldout"])]
  rows = [[name, kind, s["questions"], s["accuracy"], s["consistently_wrong_rate"]]
          for name, report in sets for kind, s in [("all", report), *report["by_kind"].items()]]
  return ["## Knowledge probe (the pretrained model, few-shot)",
          f"{probed['samples_per_question']} samples per question; SFT gets "
          f"{probed['dont_know_conversations']} \"I don't know\" conversations (questions it was always wrong "
          f"on) and {probed['known_conversations']} with its own right answers.", "",
          table(["set", "kind", "questions", "accuracy", "consistently wrong"], rows)]


def _pair_kinds(stage_dir: str, stage: str) -> list[str]:
  """A pair-trained stage's (reward model's, DPO's) held-out accuracy per pair kind (its summary's
  <stage>_accuracy_<kind>)."""
  summary = _load(os.path.join(stage_dir, "summary.json"), {})
  prefix = f"{stage}_accuracy_"
  kinds = sorted(k.removeprefix(prefix) for k in summary if k.startswith(prefix))
  rows = [[kind, summary[prefix + kind], summary.get(f"{stage}_pairs_{kind}")] for kind in kinds]
  return ["", table(["held-out pairs", "accuracy", "pairs"], rows)] if rows else []


def _rl_section(stage_dir: str, workdir: str) -> list[str]:
  records = read_metrics(stage_dir)
  if not records:
    return ["## RL", "(no metrics yet)"]
  keys = ("reward", "heldout_pass1", "heldout_pass_at_g", "kl_ref", "response_length", "clip_fraction")
  image = plots.rl_curves(records, keys, os.path.join(workdir, "rl.png"))
  evaluated = [r for r in records if "heldout_pass1" in r]
  rows = [[r["step"], r.get("heldout_pass1"), r.get("heldout_pass_at_g"), r.get("heldout_greedy")]
          for r in evaluated]
  return ["## RL", table(["iteration", "held-out pass@1", "pass@G", "greedy"], rows), "", f"![RL]({image})"]


def _harness_table(results: dict[str, dict]) -> list[str]:
  """The lm-evaluation-harness scores (eval.json's harness/<task>/<metric>) as task | metric | per stage,
  each value with its standard error, then the CORE-style average; [] when no stage ran the harness."""
  is_score = lambda k: k.count("/") == 2 and not k.split("/")[2].split(",")[0].endswith("_stderr")
  keys = sorted({k for r in results.values() for k in r if k.startswith("harness/") and is_score(k)})
  if not keys:
    return []
  def cell(r, key):
    value, stderr = r.get(key), r.get(key.replace(",", "_stderr,", 1) if "," in key else key + "_stderr")
    return value if value is None or stderr is None else f"{fmt(value)} ± {fmt(stderr)}"
  rows = [[*k.split("/")[1:], *[cell(r, k) for r in results.values()]] for k in keys]
  tasks = next((r["harness/core_tasks"] for r in results.values() if "harness/core_tasks" in r), None)
  if tasks:
    rows.append([f"CORE-style average ({tasks} task{'s' * (tasks > 1)})", "centered acc",
                 *[r.get("harness/core_centered") for r in results.values()]])
  return ["", "### Standard benchmarks (lm-evaluation-harness)", "",
          table(["task", "metric", *[s.removeprefix("eval_") for s in results]], rows)]


def _eval_section(dirs: dict) -> list[str]:
  results = {s: _load(os.path.join(dirs[s], "eval.json"), {}) for s in EVAL_STAGES if s in dirs}
  keys = sorted({k for r in results.values() for k, v in r.items()
                 if isinstance(v, (int, float)) and not k.startswith("harness/")})
  rows = [[k] + [results[s].get(k) for s in results] for k in keys]
  lines = ["## Evaluation", table(["metric", *[s.removeprefix("eval_") for s in results]], rows)]
  lines += _harness_table(results)
  for stage in results:
    samples = os.path.join(dirs[stage], "samples.md")
    if fs.exists(samples):
      lines += ["", f"### Sample conversations ({stage.removeprefix('eval_')})", "", fs.read_text(samples).strip()]
  return lines


def render(workdir: str) -> str:
  """The report card as markdown; plots are written beside it."""
  chain = _load(os.path.join(workdir, "chain.json"), {"stages": []})
  dirs, flops = stage_dirs(workdir), stage_flops(workdir)
  rows = [[s["stage"], s["key"], "cached" if s.get("cached") else "ran", s.get("seconds"),
           flops.get(s["stage"]), _relative(s["dir"], workdir)] for s in chain["stages"]]
  lines = [f"# Report: {run_name(workdir)}",
           f"Config hash `{chain.get('config_hash')}`, code commit `{_commit()}`; "
           f"{sum(s.get('seconds') or 0 for s in chain['stages']) / 60:.1f} minutes of stage time.", "",
           table(["stage", "key", "this run", "seconds", "≈FLOPs", "folder"], rows)]
  sections = [("clean", lambda d: _clean_section(d)), ("tokenizer", lambda d: _tokenizer_section(dirs)),
              ("pretrain", lambda d: _training_section("Pretraining", "pretrain", d, workdir,
                                                       ("loss", "val_loss", "val_bpb"))),
              ("probe", _probe_section),
              ("sft", lambda d: _training_section("SFT", "sft", d, workdir, ("loss", "val_loss"))),
              ("rm", lambda d: _training_section("Reward model", "rm", d, workdir,
                                                 ("loss", "accuracy", "val_accuracy"))
               + _pair_kinds(d, "rm")),
              ("rl", lambda d: _rl_section(d, workdir)),
              ("dpo", lambda d: _training_section("Preference optimisation", "dpo", d, workdir,
                                                  ("loss", "accuracy", "val_accuracy", "val_margin"))
               + _pair_kinds(d, "dpo"))]
  for stage, section in sections:
    if stage in dirs:
      lines += ["", *section(dirs[stage])]
  if any(s in dirs for s in EVAL_STAGES):
    lines += ["", *_eval_section(dirs)]
  return "\n".join(lines) + "\n"


def write(workdir: str) -> str:
  """Writes WORKDIR/report.md; returns its path."""
  path = os.path.join(workdir, "report.md")
  fs.write_atomically(path, render(workdir))
  print(f"report: {path}")
  return path


def _flatten(tree: dict, prefix: str = "") -> dict:
  out = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    out |= _flatten(value, name + ".") if isinstance(value, dict) else {name: value}
  return out


def config_differences(workdirs: list[str]) -> list[list]:
  """[field, value in each run] for every config field that differs between the runs."""
  configs = [_flatten(_load(os.path.join(w, "config.json"), {})) for w in workdirs]
  fields = sorted(set().union(*configs))
  differs = lambda field: len({json.dumps(c.get(field)) for c in configs}) > 1
  return [[f, *[c.get(f) for c in configs]] for f in fields if differs(f)]


def compare(workdirs: list[str]) -> str:
  """Markdown: every headline metric of the runs side by side, then the config fields that differ."""
  heads = [headline(w) for w in workdirs]
  names = [run_name(w) for w in workdirs]
  keys = sorted(set().union(*heads))
  metrics_table = table(["metric", *names], [[k, *[h.get(k) for h in heads]] for k in keys])
  differences = table(["field", *names], config_differences(workdirs)) if len(workdirs) > 1 else ""
  return "\n".join(["## Metrics", metrics_table, "", "## Config differences", differences]) + "\n"
