"""`lmjax sweep`: every variant of an ablation, once per seed, through the cached chain; their headline metrics
as mean ± std over seeds, and each variant's difference from the first, paired by seed, with its 95% interval.

    lmjax sweep experiments/ppo_clip.py --workdir runs/ppo_clip [--seeds 0 1 2]
        [--stage-root runs/speedrun/stages] [--emit-commands] [--config.FIELD=VALUE ...]
    lmjax report runs/ppo_clip      recomputes the table from the runs on disk (also of a sweep still running)

An ablation file defines BASE (a chain config path), VARIANTS ({name: {"dotted.field": value}}) and, if it
likes, SEEDS (a list of ints; --seeds wins). Seed s sets every field of SEED_FIELDS to s, and its run is
WORKDIR/<variant>/seed<s>; without seeds each variant runs once, in WORKDIR/<variant>, with no seed override.
All runs share one stage folder (WORKDIR/stages, or --stage-root: an earlier run's stages are then reused), so
a stage whose config and inputs are the same in two runs runs once: the stages before pretraining, which read
no seed, once for the whole sweep. Locally the runs go in sequence, seed by seed; --emit-commands prints one
`lmjax run` per (variant, seed) instead, for a cluster (the shared stages are locked, so concurrent runs
compute each of them once), and writes WORKDIR/sweep.json so that `lmjax report WORKDIR` tables them.

WORKDIR/sweep.json, rewritten after every run: {"base", "seeds" (null without seeds), "variants": {name:
{metric: {"values": {seed: value} (key "null" without seeds), "mean", "std" (ddof=1), "n", and from the
second variant on "diff_mean", "diff_ci95" ([low, high]), "diff_n"}}}}, the metrics being report.headline's.
diff_* is the variant minus the first variant over the seeds both have: the mean of the per-seed differences
and its 95% interval, diff_mean ± t.ppf(0.975, n−1)·std(diffs, ddof=1)/√n; std and the interval are null
below two seeds. WORKDIR/sweep.md is the same as a table, then the config fields the variants differ in.
"""
import importlib.util
import json
import os
import shlex

from lmjax import fs
from lmjax.chain import claims, report, runner
from lmjax.chain.seed_stats import mean_and_spread, paired_difference, seed_summary
from lmjax.config import ConfigError, load_config

# What seed s sets: pretraining's initialization and data order (and every later training stage's), and RL's
# problems, rollouts and minibatches. The data stages before pretraining read neither.
SEED_FIELDS = ("train.seed", "rl.seed")
SUMMARY_FILE = "sweep.json"


def _ablation_module(path: str):
  if not os.path.isfile(path):
    raise ConfigError(f"ablation file {path!r} does not exist")
  spec = importlib.util.spec_from_file_location("ablation", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def load_ablation(path: str):
  """(BASE config path, VARIANTS) of an ablation file; a relative BASE is found from the working directory or
  the repository the file is in."""
  module = _ablation_module(path)
  base, variants = getattr(module, "BASE", None), getattr(module, "VARIANTS", None)
  if not isinstance(base, str) or not isinstance(variants, dict):
    raise ConfigError(f"{path} must define BASE (a config path) and VARIANTS ({{name: {{field: value}}}})")
  if not variants:
    raise ConfigError(f"{path} defines no VARIANTS")
  beside = os.path.join(os.path.dirname(os.path.abspath(path)), os.pardir, base)  # experiments/ -> repo root
  if not os.path.isabs(base) and not os.path.exists(base) and os.path.exists(beside):
    base = os.path.normpath(beside)
  return base, variants


def load_seeds(path: str) -> list[int] | None:
  """The ablation file's SEEDS, or None where it defines none."""
  seeds = getattr(_ablation_module(path), "SEEDS", None)
  return None if seeds is None else check_seeds(seeds, f"{path}: SEEDS")


def check_seeds(seeds, where: str) -> list[int]:
  """`seeds` as a list; distinct ints, at least one (each seed is one run folder per variant)."""
  if (not isinstance(seeds, (list, tuple)) or not seeds
      or any(not isinstance(s, int) or isinstance(s, bool) for s in seeds)):
    raise ConfigError(f"{where} must be a non-empty list of int seeds, e.g. [0, 1, 2]; got {seeds!r}")
  if len(set(seeds)) < len(seeds):
    raise ConfigError(f"{where} repeats a seed: {list(seeds)}; give each seed once")
  return list(seeds)


def check_no_seed_fields(variants: dict, overrides: list[str]) -> None:
  """With seeds the sweep sets SEED_FIELDS itself: a variant or a shared override that sets one is an error."""
  for name, fields in variants.items():
    for field in fields:
      if field.removeprefix("config.") in SEED_FIELDS:
        raise ConfigError(f"variant {name!r} sets {field}, which the sweep's seeds set in every run "
                          f"({', '.join(SEED_FIELDS)}); drop it from the variant, or sweep without seeds")
  for override in overrides:
    if override.partition("=")[0].removeprefix("config.") in SEED_FIELDS:
      raise ConfigError(f"--config.{override} sets a field the sweep's seeds set in every run "
                        f"({', '.join(SEED_FIELDS)}); drop it, or sweep without seeds")


def variant_overrides(fields: dict) -> list[str]:
  """{"rl.clip_eps": 0.1} -> ["rl.clip_eps=0.1"]: the same text a command line would carry."""
  return [f"{name}={value!r}" for name, value in fields.items()]


def seed_overrides(seed: int | None) -> list[str]:
  """3 -> ["train.seed=3", "rl.seed=3"]; None (a sweep without seeds) -> []."""
  return [] if seed is None else [f"{field}={seed}" for field in SEED_FIELDS]


def runs(names: list[str], seeds: list[int] | None) -> list[tuple[str, int | None]]:
  """Every (variant, seed) of the sweep, seed by seed, so paired differences build up as it goes; seed None
  without seeds."""
  return [(name, seed) for seed in (seeds or [None]) for name in names]


def run_dir(workdir: str, name: str, seed: int | None) -> str:
  """WORKDIR/<variant>/seed<s>, or WORKDIR/<variant> without seeds."""
  return os.path.join(workdir, name) if seed is None else os.path.join(workdir, name, f"seed{seed}")


def run_configs(base: str, variants: dict, overrides: list[str], seeds: list[int] | None) -> dict:
  """{(variant, seed): its chain config}: BASE with the shared overrides, the variant's and the seed's."""
  return {(name, seed): load_config(base, overrides + variant_overrides(variants[name]) + seed_overrides(seed))
          for name, seed in runs(list(variants), seeds)}


def launch_commands(base: str, variants: dict, workdir: str, overrides: list[str], stage_root: str,
                    seeds: list[int] | None = None) -> list[str]:
  """One `lmjax run` command per (variant, seed), all sharing `stage_root`."""
  def command(name, seed):
    flags = [f"--config.{o}" for o in overrides + variant_overrides(variants[name]) + seed_overrides(seed)]
    return shlex.join(["lmjax", "run", "--config", base, "--workdir", run_dir(workdir, name, seed),
                       "--stage-root", stage_root, *flags])
  return [command(name, seed) for name, seed in runs(list(variants), seeds)]


def _values(by_seed: dict, metric: str) -> dict:
  return {seed: headline[metric] for seed, headline in by_seed.items() if metric in headline}


def summarize(headlines: dict[str, dict]) -> dict[str, dict]:
  """{variant: {seed: {metric: value}}} -> {variant: {metric: seed_summary, and from the second variant on its
  paired_difference from the first}}; every variant gets every metric that any run has."""
  metrics = sorted({m for by_seed in headlines.values() for headline in by_seed.values() for m in headline})
  (first, reference), *others = headlines.items()
  out = {first: {m: seed_summary(_values(reference, m)) for m in metrics}}
  for name, by_seed in others:
    out[name] = {m: seed_summary(_values(by_seed, m))
                 | paired_difference(_values(reference, m), _values(by_seed, m)) for m in metrics}
  return out


def _spread_cell(entry: dict) -> str:
  return f"{mean_and_spread(entry)} (n={entry['n']})" if entry["n"] else "—"


def _difference_cell(entry: dict) -> str:
  if not entry["diff_n"]:
    return "—"
  low_high = entry["diff_ci95"]
  interval = "—" if low_high is None else f"{report.fmt(low_high[0])}, {report.fmt(low_high[1])}"
  return f"{entry['diff_mean']:+.4g} [{interval}] (n={entry['diff_n']})"


def _row(summary: dict[str, dict], metric: str) -> list[str]:
  """A metric's cells: the first variant's mean ± std, then each other variant's and its difference."""
  first, *others = summary
  cells = [_spread_cell(summary[first][metric])]
  for name in others:
    cells += [_spread_cell(summary[name][metric]), _difference_cell(summary[name][metric])]
  return [metric, *cells]


def _config_differences(workdir: str, names: list[str], seeds: list[int] | None) -> str:
  """The config fields the variants differ in, from each variant's first-seed run (those started so far)."""
  if len(names) == 1:
    return "(one variant)"
  dirs = {name: run_dir(workdir, name, seeds[0] if seeds else None) for name in names}
  started = {name: d for name, d in dirs.items() if fs.exists(os.path.join(d, "config.json"))}
  if len(started) < 2:
    return "(fewer than two variants have started)"
  return report.table(["field", *started], report.config_differences(list(started.values())))


def _claims(workdir: str, seeds: list[int] | None, headlines: dict[str, dict]) -> list[str]:
  """Per variant: the speedrun's claims per seed (lmjax.chain.claims) and each seed's sample conversations."""
  lines = []
  for name, by_seed in headlines.items():
    table = claims.claims_table(by_seed) if seeds else None
    if table:
      lines += ["", f"## Claims per seed: {name}", table,
                *claims.samples_section({s: run_dir(workdir, name, s) for s in seeds})]
  return lines


def render(workdir: str, base: str, seeds: list[int] | None, summary: dict[str, dict],
           headlines: dict[str, dict]) -> str:
  """sweep.md: with seeds, each variant's claims per seed and sample conversations; a row per metric with each
  variant's mean ± std and, from the second variant on, its paired difference from the first; then the config
  fields the variants differ in."""
  names = list(summary)
  first, metrics = names[0], sorted(set().union(*summary.values()))
  header = ["metric", first, *[column for name in names[1:] for column in (name, f"{name} − {first}")]]
  runs_text = f"seeds {', '.join(map(str, seeds))}" if seeds else "one run each (no seeds)"
  variants_text = f"{len(names)} variant{'s' if len(names) > 1 else ''}"
  return "\n".join([
      f"# Sweep {report.run_name(workdir)}: {variants_text} of {base}, {runs_text}", "",
      "Each variant: mean ± standard deviation (ddof=1) over its n seeds." + (
          f" Each \"− {first}\" column: that variant minus {first}, paired by seed over the seeds both have: the "
          "mean difference [its 95% Student-t interval]." if len(names) > 1 else ""),
      *_claims(workdir, seeds, headlines), "",
      "## Metrics", report.table(header, [_row(summary, m) for m in metrics]), "",
      "## Config differences", _config_differences(workdir, names, seeds)]) + "\n"


def write_summary(workdir: str, base: str, names: list[str], seeds: list[int] | None) -> str:
  """Recomputes the statistics from the runs on disk (a run not started yet counts for no metric), rewrites
  WORKDIR/sweep.json and sweep.md, and returns sweep.md's text."""
  headlines = {name: {} for name in names}
  for name, seed in runs(names, seeds):
    headlines[name][seed] = report.headline(run_dir(workdir, name, seed))
  summary = summarize(headlines)
  fs.makedirs(workdir)
  fs.write_atomically(os.path.join(workdir, SUMMARY_FILE),
                      json.dumps({"base": base, "seeds": seeds, "variants": summary}, indent=2))
  text = render(workdir, base, seeds, summary, headlines)
  fs.write_atomically(os.path.join(workdir, "sweep.md"), text)
  return text


def is_sweep(workdir: str) -> bool:
  """Whether `workdir` is a sweep's folder (it has sweep.json), for `lmjax report`."""
  return fs.isfile(os.path.join(workdir, SUMMARY_FILE))


def rewrite_summary(workdir: str) -> str:
  """`lmjax report WORKDIR` of a sweep: sweep.json and sweep.md recomputed from the runs now on disk."""
  saved = json.loads(fs.read_text(os.path.join(workdir, SUMMARY_FILE)))
  return write_summary(workdir, saved["base"], list(saved["variants"]), saved["seeds"])


def run(path: str, workdir: str, overrides: list[str], *, stage_root: str | None = None,
        emit_commands: bool = False, seeds: list[int] | None = None) -> str | None:
  """Runs every (variant, seed) (or prints their launch commands); seeds default to the file's SEEDS. Rewrites
  WORKDIR/sweep.json and sweep.md after every run and returns sweep.md's path."""
  base, variants = load_ablation(path)
  seeds = load_seeds(path) if seeds is None else check_seeds(seeds, "--seeds")
  if seeds:
    check_no_seed_fields(variants, overrides)
  stage_root = stage_root or os.path.join(workdir, "stages")
  configs = run_configs(base, variants, overrides, seeds)  # every run's config is checked before any runs
  write_summary(workdir, base, list(variants), seeds)
  if emit_commands:
    print("\n".join(launch_commands(base, variants, workdir, overrides, stage_root, seeds)))
    return None
  for (name, seed), config in configs.items():
    print(f"sweep: variant {name}" + ("" if seed is None else f", seed {seed}"), flush=True)
    runner.run(config, run_dir(workdir, name, seed), stage_root=stage_root)
    write_summary(workdir, base, list(variants), seeds)
  path = os.path.join(workdir, "sweep.md")
  print(f"sweep: {path}")
  return path
