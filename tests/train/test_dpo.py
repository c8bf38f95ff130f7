"""`lmjax dpo`: a preference row masks exactly the final reply's tokens; DPO from a tiny SFT model that
prefers the rejected one of two endings learns the chosen one (the policy's own held-out preference accuracy
rises from near 0 to near 1), resumes exactly after `kill -9`, and a reference-free loss trains without the
reference pass."""
import json

import jax
import numpy as np
import pytest

from lmjax import chat, losses
from lmjax.config import ConfigError, load_saved_config
from lmjax.data.pairs_pipeline import pair_row, split_pairs
from lmjax.data.tokenizer import Tokenizer
from lmjax.infer.load import load_model
from lmjax.train.dpo import bound_loss, needs_reference
from lmjax.train.metrics import read_metrics
from tests.train.conftest import kill_9_after_checkpoint, logged_losses, run_stage

WORDS = ("apple", "river", "stone", "cloud", "bread", "music", "garden", "window", "paper", "light")


def _prompt(rng) -> str:
  return "Tell me about the " + " ".join(rng.choice(WORDS, 2)) + "."


def _reply(prompt: str, ending: str) -> str:
  return f"The {prompt.split('the ', 1)[1][:-1]} is {ending}."


CHOSEN, REJECTED = "down", "up"  # one token each, so neither reply is longer


def _pairs(n, seed=0):
  """Separable: the chosen reply ends "... is down.", the rejected one the same words "... is up."."""
  rng = np.random.default_rng(seed)
  for _ in range(n):
    prompt = _prompt(rng)
    yield {"prompt": prompt, "chosen": _reply(prompt, CHOSEN), "rejected": _reply(prompt, REJECTED)}


def test_a_pair_row_masks_exactly_the_final_replys_tokens(tokens_workdir):
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  pair = {"prompt": [{"role": "user", "content": "Hi."}, {"role": "assistant", "content": "Hello."},
                     {"role": "user", "content": "And the stone?"}],
          "chosen": "The stone is good.", "rejected": {"role": "assistant", "content": "The stone is bad."}}
  row = pair_row(pair, tok, 128)
  for side, text in (("chosen", "The stone is good."), ("rejected", "The stone is bad.")):
    said = row["targets"][row[f"{side}_mask"] > 0]
    assert tok.decode(said) == text + "<|assistant_end|>"  # not the earlier "Hello." of the prompt
  assert (row["chosen_mask"] * row["rejected_mask"]).sum() == 0
  assert row["chosen_mask"][row["chosen_index"]] == 0  # a reply's last token predicts nothing
  assert pair_row(pair, tok, 20) is None


@pytest.fixture(scope="module")
def contrary_sft(uninterrupted, tokens_workdir, tmp_path_factory):
  """A tiny SFT run on the same kind of prompts answered "up" three times as often as "down", so it prefers
  the reply DPO is to reject."""
  data = tmp_path_factory.mktemp("dpo_sft_data") / "conversations.jsonl"
  rng = np.random.default_rng(1)
  with open(data, "w") as f:
    for i in range(80):
      prompt = _prompt(rng)
      messages = [{"role": "user", "content": prompt},
                  {"role": "assistant", "content": _reply(prompt, CHOSEN if i % 4 == 0 else REJECTED)}]
      chat.validate(messages)
      f.write(json.dumps({"messages": messages}) + "\n")
  workdir = tmp_path_factory.mktemp("dpo_sft")
  run_stage("sft", workdir, tokens_workdir, f"--config.sft.base_workdir={uninterrupted}",
            f"--config.sft.conversations={data}", "--config.train.steps=12", "--config.log.tensorboard=false")
  return workdir


@pytest.fixture(scope="module")
def dpo_flags(contrary_sft, tmp_path_factory):
  pairs = tmp_path_factory.mktemp("dpo_data") / "pairs.jsonl"
  pairs.write_text("".join(json.dumps(p) + "\n" for p in _pairs(100)))
  return (f"--config.dpo.base_workdir={contrary_sft}", f"--config.dpo.pairs={pairs}",
          "--config.dpo.val_fraction=0.25", "--config.dpo.beta=0.5", "--config.train.steps=16",
          "--config.train.seq_len=64", "--config.eval.every_steps=8", "--config.optim.lr=3e-3",
          "--config.optim.weight_decay=0.0", "--config.log.tensorboard=false")


@pytest.fixture(scope="module")
def trained(dpo_flags, tokens_workdir, tmp_path_factory):
  """(workdir, stdout) of the uninterrupted DPO run, also the reference for the resume test."""
  workdir = tmp_path_factory.mktemp("dpo")
  return workdir, run_stage("dpo", workdir, tokens_workdir, *dpo_flags).stdout


def _policy_preference(workdir) -> float:
  """The share of the run's held-out pairs whose chosen reply the model finds likelier than the rejected."""
  config = load_saved_config(workdir)
  loaded = load_model(config, str(workdir))
  _, held_out, _ = split_pairs(list(_pairs(100)), loaded.tokenizer, 64, config.dpo.val_fraction)
  rows = [row for kind in held_out.values() for row in kind]
  batch = {k: np.stack([r[k] for r in rows]) for k in ("tokens", "positions", "segment_ids", "targets",
                                                         "chosen_mask", "rejected_mask")}
  chosen, rejected, _, _ = jax.device_get(losses.response_logprobs(loaded.model(), batch))
  return float(np.mean(chosen > rejected))


def test_dpo_raises_held_out_preference_accuracy_on_a_separable_preference(trained, contrary_sft):
  workdir, stdout = trained
  assert "reference log-probs scored once" in stdout
  before, after = _policy_preference(contrary_sft), _policy_preference(workdir)
  print(f"held-out preference accuracy of the policy: SFT {before:.3f}, DPO {after:.3f}")
  assert before <= 0.25 and after >= 0.95, (before, after)
  evaluated = [m for m in read_metrics(workdir) if "val_accuracy" in m]
  assert evaluated[-1]["val_accuracy"] >= 0.9 and evaluated[-1]["val_margin"] > 0
  assert evaluated[-1]["val_loss"] < np.log(2)  # below a policy still at its reference
  summary = json.loads((workdir / "summary.json").read_text())
  assert summary["dpo_accuracy_file"] >= 0.9 and summary["dpo_pairs_file"] >= 8


@pytest.mark.slow  # two more DPO runs (~1 minute on 2 cores)
def test_dpo_resumes_exactly_after_kill_9(trained, dpo_flags, tokens_workdir, tmp_path):
  killed_at = kill_9_after_checkpoint("dpo", tmp_path, tokens_workdir, *dpo_flags, step=4)
  assert 4 < killed_at < 16, "the run should have been killed part-way, past its first checkpoint"
  run_stage("dpo", tmp_path, tokens_workdir, *dpo_flags)
  assert 4 <= json.loads((tmp_path / "summary.json").read_text())["resumed_from"] <= killed_at
  assert logged_losses(tmp_path) == logged_losses(trained[0])  # exactly, step for step


def test_a_reference_free_loss_trains_without_the_reference_pass(dpo_flags, tokens_workdir, tmp_path):
  stdout = run_stage("dpo", tmp_path, tokens_workdir, *dpo_flags, "--config.dpo.loss=orpo",
                     "--config.train.steps=4", "--config.eval.every_steps=4").stdout
  assert "orpo on" in stdout and "no reference model" in stdout
  logged = read_metrics(tmp_path)
  assert logged[-1]["step"] == 4 and "val_accuracy" in logged[-1] and "odds_ratio_loss" in logged[-1]


def test_the_loss_is_chosen_by_name_with_its_hyperparameters_bound():
  from configs import base
  d = base.get_config().dpo
  d.update(loss="simpo", simpo_beta=2.5, simpo_gamma=0.3)
  assert bound_loss(d).keywords == {"beta": 2.5, "gamma": 0.3} and not needs_reference("simpo")
  assert needs_reference("dpo") and needs_reference("ipo") and not needs_reference("orpo")
  d.loss = "kto"
  with pytest.raises(ConfigError, match="config.dpo.loss='kto'; use one of dpo, ipo, simpo, orpo"):
    bound_loss(d)


@pytest.mark.slow  # ~30 s: a third DPO run
def test_lora_dpo_trains_adapters_on_the_frozen_sft_model_and_learns_the_preference(dpo_flags, tokens_workdir,
                                                                                    contrary_sft, tmp_path):
  stdout = run_stage("dpo", tmp_path, tokens_workdir, *dpo_flags, "--config.model.lora.rank=4",
                     "--config.model.lora.alpha=8", "--config.optim.lr=3e-2").stdout
  assert "reference log-probs scored once" in stdout
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert 0 < summary["trainable_params"] < summary["params"] / 10
  assert json.loads((tmp_path / "config.json").read_text())["model"]["lora"]["base_workdir"] == str(contrary_sft)
  assert _policy_preference(tmp_path) > _policy_preference(contrary_sft)  # loading merges the adapters
