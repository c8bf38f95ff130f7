"""The chain's stages: which config fields decide each one's output, which stages it reads, and how it runs.

A stage runs on its own config: the chain config with `config.stage.<name>` overrides applied (e.g. SFT's
own train.steps) and its inputs' folders wired into the path fields (WIRING), which are never hashed: an
input is identified by its key, not by where it lives. A stage's key covers every config field it reads:
its own `fields`, its inputs' keys, and nothing else but WIRING and UNKEYED (how a stage runs, never what it
computes); tests/chain/test_stage_inputs.py fails when a stage reads a field outside them.
"""
import dataclasses
import os
from collections.abc import Callable

import ml_collections

from lmjax.config import ConfigError

# Fields the chain fills in with the folders of a stage's inputs.
WIRING = ("data.documents", "data.tokenizer", "data.tokens_dir", "probe.model_workdir", "probe.prompt",
          "sft.base_workdir", "sft.idk_conversations", "rm.base_workdir", "rl.base_workdir",
          "rl.reward_model_workdir", "dpo.base_workdir", "eval.model_workdir")
# Fields that only name the model a stage trains, for `lmjax convert --to-hf`: part of no key, like WIRING.
NAMING = ("model.hf_architecture",)
# Globs of input files: hashed by their files' names and contents, not by the path.
DATA = ("chain.web_input", "chain.corpus")
# What decides a trained model: architecture, optimizer, schedule, batches, the in-training validation.
TRAINING = ("model", "optim", "schedule", "train", "eval.every_steps", "eval.batches")
DOCUMENTS = ("chain.corpus", "data.text_field", "data.val_fraction")
# What generated replies are judged on: the math task and the generation settings, shared by RL's held-out
# evaluation and `lmjax eval`, so the SFT and RL numbers of one chain are always measured alike.
HELDOUT = ("math", "rollout")
# Fields stages read that decide how they run, not what they compute: the hardware a config is planned for,
# the compilation cache, the device mesh and its sharding rules,
# checkpoint and logging cadence (resume is exact), worker and prefetch counts (outputs are in input order).
UNKEYED = ("hardware", "runtime", "mesh", "rules", "checkpoint", "log", "data.workers", "data.prefetch")


# How a stage runs when the chain spans several processes (hosts).
ONE_PROCESS = "one"  # process 0 runs it (CPU work on files); the others wait
ALL_PROCESSES = "all"  # every process runs it together on the global mesh
SINGLE_HOST = "single"  # not multi-host yet: the chain refuses to run it across processes


@dataclasses.dataclass(frozen=True)
class Stage:
  name: str
  fields: tuple[str, ...]  # dotted config fields or sections whose values decide the output
  needs: Callable[[ml_collections.ConfigDict], tuple[str, ...]]  # the stages whose outputs it reads
  execute: Callable[[ml_collections.ConfigDict, str, dict[str, str]], None]  # (config, out dir, input dirs)
  processes: str  # ONE_PROCESS | ALL_PROCESSES | SINGLE_HOST


def _documents(config, dirs) -> str:
  """The cleaned web pages (exactly the clean stage's document shards, never its markers or stats), plus
  config.chain.corpus (curated documents mixed in) when set."""
  from lmjax.data.web.shards import DOC_SUFFIXES
  docs = os.path.join(dirs["clean"], "docs", "*" + DOC_SUFFIXES[config.clean.output_format])
  return f"{docs},{config.chain.corpus}" if config.chain.corpus else docs


def _tokenizer_file(dirs) -> str:
  return os.path.join(dirs["tokenizer"], "tokenizer.model")


def _clean(config, out, dirs):
  from lmjax.data.web import stage
  stage.run(config.clean, out, input_pattern=config.chain.web_input)


def _train_tokenizer(config, out, dirs):
  from lmjax.data import tokenizer
  config.data.documents = _documents(config, dirs)
  tokenizer.run(config, out)


def _tokenize(config, out, dirs):
  from lmjax.data import shards
  config.data.documents, config.data.tokenizer = _documents(config, dirs), _tokenizer_file(dirs)
  shards.run(config, out)


def _pretrain(config, out, dirs):
  from lmjax.train import pretrain
  config.data.tokenizer = _tokenizer_file(dirs)
  config.data.tokens_dir = os.path.join(dirs["tokenize"], "tokens")
  pretrain.run(config, out)


def _probe(config, out, dirs):
  """Probes the pretrained model (few-shot: it has no chat protocol yet) for SFT's "I don't know" data."""
  from lmjax.infer import probe
  config.probe.model_workdir, config.probe.prompt = dirs["pretrain"], "few_shot"
  probe.run(config, out)


def _sft(config, out, dirs):
  from lmjax.train import sft
  config.sft.base_workdir = dirs["pretrain"]
  if "probe" in dirs:
    config.sft.idk_conversations = os.path.join(dirs["probe"], "idk_conversations.jsonl")
  sft.run(config, out)


def _sft_needs(config) -> tuple[str, ...]:
  """The pretrained model, and the knowledge probe of it when the mixture has "I don't know" data."""
  return ("pretrain", "probe") if config.sft.mixture.get("idk", 0) > 0 else ("pretrain",)


def _reward_model(config, out, dirs):
  from lmjax.train import reward_model
  config.rm.base_workdir = dirs["sft"]
  reward_model.run(config, out)


def _dpo(config, out, dirs):
  from lmjax.train import dpo
  config.dpo.base_workdir = dirs["sft"]
  dpo.run(config, out)


def _rl(config, out, dirs):
  from lmjax.train import rl
  config.rl.base_workdir = dirs["sft"]
  if "rm" in dirs:
    config.rl.reward_model_workdir = dirs["rm"]
  rl.run(config, out)


def _rl_needs(config) -> tuple[str, ...]:
  return ("sft", "rm") if config.rl.reward == "reward_model" else ("sft",)


def _evaluate(model_stage: str):
  def execute(config, out, dirs):
    from lmjax.eval import stage
    config.eval.model_workdir = dirs[model_stage]
    stage.run(config, out)
  return execute


def _evaluation(model_stage: str) -> Stage:
  return Stage(f"eval_{model_stage}", ("eval", *HELDOUT), lambda c: (model_stage,), _evaluate(model_stage),
               SINGLE_HOST)


STAGES = {s.name: s for s in [
    Stage("clean", ("clean", "chain.web_input"), lambda c: (), _clean, ONE_PROCESS),
    Stage("tokenizer", ("tokenizer", "model.vocab_size", *DOCUMENTS), lambda c: ("clean",), _train_tokenizer,
          ONE_PROCESS),
    Stage("tokenize", (*DOCUMENTS, "data.num_shards"), lambda c: ("clean", "tokenizer"), _tokenize,
          ONE_PROCESS),
    Stage("pretrain", (*TRAINING, "data.streams"), lambda c: ("tokenizer", "tokenize"), _pretrain,
          ALL_PROCESSES),
    Stage("probe", ("probe",), lambda c: ("pretrain",), _probe, SINGLE_HOST),
    Stage("sft", (*TRAINING, "data.streams", "sft"), _sft_needs, _sft, ALL_PROCESSES),
    Stage("rm", (*TRAINING, "data.streams", "rm"), lambda c: ("sft",), _reward_model, ALL_PROCESSES),
    Stage("rl", (*TRAINING, "data.streams", "rl", *HELDOUT), _rl_needs, _rl, SINGLE_HOST),
    Stage("dpo", (*TRAINING, "data.streams", "dpo"), lambda c: ("sft",), _dpo, ALL_PROCESSES),
    _evaluation("pretrain"), _evaluation("sft"), _evaluation("rl"), _evaluation("dpo"),
]}

# config.chain.preference: the stages each route runs after SFT, as (training stages, final evaluation). A
# route's stages in config.chain.stages stand for the chosen route's, which run in their place.
ROUTES = {"rm_ppo": (("rm", "rl"), ("eval_rl",)), "dpo": (("dpo",), ("eval_dpo",))}


def chain_stages(config) -> tuple[str, ...]:
  """config.chain.stages in order, where another route's stages are replaced by config.chain.preference's
  (the rm, rl and eval_rl of the default list become dpo and eval_dpo under preference "dpo")."""
  chosen = config.chain.preference
  if chosen not in ROUTES:
    raise ConfigError(f"config.chain.preference={chosen!r}; use one of {', '.join(ROUTES)}")
  other = {name: part for route, parts in ROUTES.items() if route != chosen
           for part, names in enumerate(parts) for name in names}
  out: list[str] = []
  for name in config.chain.stages:
    for stage in ROUTES[chosen][other[name]] if name in other else (name,):
      if stage not in out:
        out.append(stage)
  return tuple(out)


def stage_config(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """The chain config with `config.stage.<name>`'s overrides applied; a field the schema lacks is an error."""
  out = ml_collections.ConfigDict(config.to_dict())
  overrides = config.stage.get(name)
  if overrides is not None:
    _apply(out, overrides.to_dict(), f"stage.{name}")
  return out


def _apply(node: ml_collections.ConfigDict, overrides: dict, where: str) -> None:
  for key, value in overrides.items():
    if key not in node:
      raise ConfigError(f"config.{where}.{key} overrides a field the schema does not have (configs/base.py)")
    if isinstance(value, dict):
      _apply(node[key], value, f"{where}.{key}")
    else:
      node[key] = value
