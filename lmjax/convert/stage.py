"""`lmjax convert`: a HuggingFace Llama/Mistral/Qwen directory -> a run, and a run's latest checkpoint -> HF.

    lmjax convert --from-hf path/to/llama --workdir runs/llama     # then lmjax sample / sft from it
    lmjax convert --to-hf --workdir runs/quickstart --out hf/quickstart

An imported run is what any stage leaves behind: WORKDIR/config.json, a step-0 checkpoint (a TrainState
with a fresh optimizer state) and, when the HF directory has a sentencepiece tokenizer.model, that file.
"""
import os

from lmjax import fs
from lmjax.config import ConfigError, UserError, load_saved_config
from lmjax.convert.hf import from_hf, to_hf
from lmjax.data.tokenizer import Tokenizer
from lmjax.infer.load import latest_params
from lmjax.train import checkpoint
from lmjax.train.base_run import fresh_state
from lmjax.train.setup import build_model_setup, build_train_setup, tokenizer_path


def import_hf(hf_dir: str, workdir: str) -> str:
  """Writes the run in `workdir` from the checkpoint in `hf_dir`; returns a one-line summary."""
  config, params = from_hf(hf_dir)
  ckpt_dir = os.path.join(workdir, "checkpoints")
  if fs.isdir(ckpt_dir) and fs.listdir(ckpt_dir):
    raise UserError(f"{ckpt_dir} already holds checkpoints; convert into an empty --workdir")
  source_tok = os.path.join(hf_dir, "tokenizer.model")
  has_tok = fs.exists(source_tok)
  if has_tok and Tokenizer(source_tok).vocab_size != config.model.vocab_size:
    raise ConfigError(f"{source_tok} has {Tokenizer(source_tok).vocab_size} tokens but config.json's "
                      f"vocab_size is {config.model.vocab_size}; lmjax needs them equal")
  setup = build_train_setup(config)  # checks the config against the devices before anything is written
  fs.makedirs(workdir)
  if has_tok:
    fs.copy(source_tok, tokenizer_path(config, workdir))
  fs.write_text(os.path.join(workdir, "config.json"), config.to_json_best_effort(indent=2))
  manager = checkpoint.make_manager(ckpt_dir, keep=config.checkpoint.keep)
  checkpoint.save(manager, 0, fresh_state(setup, params), {"converted_from": fs.absolute(hf_dir)})
  manager.wait_until_finished()
  tok_note = "with its tokenizer.model" if has_tok else "no tokenizer.model there: add one before sampling"
  return f"{hf_dir} -> {workdir}: {setup.param_count:,} parameters at step 0 ({tok_note})"


def export_hf(workdir: str, out_dir: str) -> str:
  """Writes the latest checkpoint of the run in `workdir` as a HuggingFace directory; returns a summary."""
  config = load_saved_config(workdir)
  params, step = latest_params(config, build_model_setup(config), workdir)  # a missing tokenizer is allowed
  tok_file = tokenizer_path(config, workdir)
  to_hf(config, params, out_dir, tokenizer=Tokenizer(tok_file) if fs.exists(tok_file) else None)
  return f"{workdir} (step {step}) -> {out_dir}"


def run(workdir: str, *, from_hf_dir: str | None = None, to_hf_dir: str | None = None) -> str:
  """One direction of `lmjax convert`; prints and returns its summary."""
  if (from_hf_dir is None) == (to_hf_dir is None):
    raise UserError("lmjax convert needs either --from-hf DIR, or --to-hf with --out DIR")
  summary = import_hf(from_hf_dir, workdir) if from_hf_dir else export_hf(workdir, to_hf_dir)
  print(f"convert: {summary}")
  return summary
