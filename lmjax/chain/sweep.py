"""`lmjax sweep`: every variant of an ablation through the cached chain, and a table of their final metrics.

    lmjax sweep experiments/ppo_clip.py --workdir runs/ppo_clip [--stage-root runs/speedrun/stages]
        [--emit-commands] [--config.FIELD=VALUE ...]

An ablation file defines BASE (a chain config path) and VARIANTS ({name: {"dotted.field": value}}). Variants
share one stage folder (WORKDIR/stages, or --stage-root: an earlier run's stages are then reused), so a stage
whose config and inputs are the same in two variants runs once. Locally the variants run in sequence;
--emit-commands prints one `lmjax run` per variant instead, for a cluster (the shared stages are locked, so
concurrent variants compute each of them once).
"""
import importlib.util
import os
import shlex

from lmjax.chain import report, runner
from lmjax.config import ConfigError, load_config


def load_ablation(path: str):
  """(BASE config path, VARIANTS) of an ablation file; a relative BASE is found from the working directory or
  the repository the file is in."""
  if not os.path.isfile(path):
    raise ConfigError(f"ablation file {path!r} does not exist")
  spec = importlib.util.spec_from_file_location("ablation", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  base, variants = getattr(module, "BASE", None), getattr(module, "VARIANTS", None)
  if not isinstance(base, str) or not isinstance(variants, dict):
    raise ConfigError(f"{path} must define BASE (a config path) and VARIANTS ({{name: {{field: value}}}})")
  if not variants:
    raise ConfigError(f"{path} defines no VARIANTS")
  beside = os.path.join(os.path.dirname(os.path.abspath(path)), os.pardir, base)  # experiments/ -> repo root
  if not os.path.isabs(base) and not os.path.exists(base) and os.path.exists(beside):
    base = os.path.normpath(beside)
  return base, variants


def variant_overrides(fields: dict) -> list[str]:
  """{"rl.clip_eps": 0.1} -> ["rl.clip_eps=0.1"]: the same text a command line would carry."""
  return [f"{name}={value!r}" for name, value in fields.items()]


def launch_commands(base: str, variants: dict, workdir: str, overrides: list[str],
                    stage_root: str) -> list[str]:
  """One `lmjax run` command per variant, all sharing `stage_root`."""
  def command(name, fields):
    flags = [f"--config.{o}" for o in overrides + variant_overrides(fields)]
    return shlex.join(["lmjax", "run", "--config", base, "--workdir", os.path.join(workdir, name),
                       "--stage-root", stage_root, *flags])
  return [command(name, fields) for name, fields in variants.items()]


def run(path: str, workdir: str, overrides: list[str], *, stage_root: str | None = None,
        emit_commands: bool = False) -> str | None:
  """Runs every variant (or prints their launch commands); writes WORKDIR/sweep.md and returns its path."""
  base, variants = load_ablation(path)
  stage_root = stage_root or os.path.join(workdir, "stages")
  configs = {name: load_config(base, overrides + variant_overrides(fields))  # every variant checked first
             for name, fields in variants.items()}
  if emit_commands:
    print("\n".join(launch_commands(base, variants, workdir, overrides, stage_root)))
    return None
  for name, config in configs.items():
    print(f"sweep: variant {name}", flush=True)
    runner.run(config, os.path.join(workdir, name), stage_root=stage_root)
  path = os.path.join(workdir, "sweep.md")
  with open(path, "w") as f:
    f.write(f"# Sweep {os.path.basename(workdir)}: {len(variants)} variants of {base}\n\n"
            + report.compare([os.path.join(workdir, name) for name in variants]))
  print(f"sweep: {path}")
  return path
