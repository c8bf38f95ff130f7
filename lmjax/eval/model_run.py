"""The run `lmjax eval` scores: its model, what kind of run it is, and the runs it descends from.

A run's kind comes from its saved config: `rl.base_workdir` set → an RL run, `rm.base_workdir` → a reward
model, `dpo.base_workdir` → a preference-optimised (DPO, IPO, SimPO, ORPO) run, `sft.base_workdir` → an SFT
run, none → pretraining. "chat" models are SFT, DPO and RL runs. The ancestors
matter twice: the math held-out problems exclude those the SFT run trained on (found up the chain, as RL
does), and a chat model's val_bpb reads the token shards of the pretraining run at the root.

Saved base_workdirs are usually relative to the directory the run was trained from (`runs/quickstart`); they
are looked up next to the child run first (each of its parent folders, nearest first), then from here.
"""
import dataclasses
import os

from lmjax import fs
from lmjax.config import ConfigError, load_saved_config
from lmjax.infer.load import LoadedModel, load_model
from lmjax.train.setup import build_model_setup, tokens_dir

CHAT_KINDS = ("sft", "dpo", "rl")
PARENT_FIELD = {"rl": "rl.base_workdir", "rm": "rm.base_workdir", "dpo": "dpo.base_workdir",
                "sft": "sft.base_workdir"}


@dataclasses.dataclass(frozen=True)
class Run:
  """One run of a lineage: where it is, its saved config and its kind (pretrain | sft | rm | dpo | rl)."""
  workdir: str
  config: object
  kind: str


@dataclasses.dataclass(frozen=True)
class ModelRun:
  """What every eval task receives: the loaded model and its lineage (the evaluated run first)."""
  loaded: LoadedModel
  lineage: list[Run]

  @property
  def chat(self) -> bool:
    return self.lineage[0].kind in CHAT_KINDS


def run_kind(config) -> str:
  """pretrain | sft | rm | dpo | rl, by which base_workdir the saved config sets."""
  for kind, field in PARENT_FIELD.items():
    if _get(config, field):
      return kind
  return "pretrain"


def _get(config, dotted: str):
  section, name = dotted.split(".")
  return config.get(section, {}).get(name, "")


def find_run(path: str, child_workdir: str) -> str | None:
  """`path` as a run folder (one with a config.json): absolute (or a URL), or relative to a folder above the
  child run (nearest first), or to the current directory; None if there is none."""
  if os.path.isabs(path) or "://" in path:
    candidates = [path]
  else:
    candidates = [os.path.join(folder, path) for folder in _folders_above(child_workdir)]
    candidates.append(os.path.abspath(path))
  return next((c for c in candidates if fs.exists(os.path.join(c, "config.json"))), None)


def _folders_above(path: str) -> list[str]:
  """The folder holding `path` and every one above it, nearest first; a URL's stop at its bucket."""
  scheme, sep, folder = fs.absolute(path).rpartition("://")
  prefix, folder, folders = scheme + sep, os.path.dirname(folder), []
  while True:
    folders.append(prefix + folder)
    if os.path.dirname(folder) in (folder, ""):
      return folders
    folder = os.path.dirname(folder)


def lineage(workdir: str) -> list[Run]:
  """The run in WORKDIR then its ancestors, back to a pretraining run (or to the first one not found)."""
  if not fs.exists(os.path.join(workdir, "config.json")):
    raise ConfigError(f"config.eval.model_workdir={workdir!r} holds no config.json; give a trained run")
  runs = []
  while workdir is not None and len(runs) < 16:
    config = load_saved_config(workdir)
    runs.append(Run(fs.absolute(workdir), config, run_kind(config)))
    kind = runs[-1].kind
    workdir = find_run(_get(config, PARENT_FIELD[kind]), workdir) if kind != "pretrain" else None
  return runs


def sft_config(runs: list[Run]):
  """The `sft` section of the nearest SFT run in the lineage, or None (then no problem counts as seen)."""
  for run in runs:
    if run.kind == "sft":
      return run.config.sft
  last = runs[-1]
  if any(run.kind in ("rl", "dpo") for run in runs):
    parent = _get(last.config, PARENT_FIELD[last.kind]) if last.kind in PARENT_FIELD else ""
    raise ConfigError(f"cannot find the SFT run {parent!r} that the {last.kind} run {last.workdir} started "
                      "from, so its held-out problems cannot exclude SFT's; run `lmjax eval` from the directory "
                      "the runs were trained in")
  return None


def val_tokens_dir(runs: list[Run], configured: str = "") -> str | None:
  """`configured`, else the token shards of the pretraining run at the lineage's root (None if not found)."""
  if configured:
    return configured
  root = runs[-1]
  if root.kind != "pretrain":
    return None
  path = tokens_dir(root.config, root.workdir)
  return path if fs.isdir(os.path.join(path, "val")) else None


def load_policy(run: Run) -> LoadedModel:
  """The latest checkpoint's generating model. An RL run with a critic (rl.advantage="gae") saved a
  scalar-head model whose backbone is the policy: that backbone, as a plain transformer, as RL samples it."""
  critic = run.kind == "rl" and run.config.rl.advantage == "gae"
  loaded = load_model(run.config, run.workdir, scalar_head=critic)
  if not critic:
    return loaded
  plain = build_model_setup(run.config).graphdef
  return dataclasses.replace(loaded, graphdef=plain, params=loaded.params["backbone"])
