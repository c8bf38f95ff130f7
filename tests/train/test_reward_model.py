"""The reward model: pair rows score each response at its own last token, and `lmjax rm` learns a
trivially separable preference from a pretrained run (held-out pairwise accuracy well above chance) and
resumes exactly after `kill -9`, reporting its held-out accuracy per pair kind."""
import json

import ml_collections
import pytest

from lmjax import chat
from lmjax.config import ConfigError
from lmjax.data.pairs_pipeline import pair_row, preference_pairs, split_pairs
from lmjax.data.posttrain import math_problems
from lmjax.data.posttrain.preferences import REJECTIONS, math_preference_pairs
from lmjax.data.tokenizer import Tokenizer
from lmjax.train.metrics import read_metrics
from tests.train.conftest import kill_9_after_checkpoint, logged_losses, run_stage, separable_pairs


def test_a_pair_row_holds_both_responses_scored_at_their_last_tokens(tokens_workdir):
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  pair = next(separable_pairs(1))
  row = pair_row(pair, tok, 128)
  end = tok.special_id("<|assistant_end|>")
  assert row["tokens"][row["chosen_index"]] == end and row["tokens"][row["rejected_index"]] == end
  assert row["segment_ids"][row["chosen_index"]] == 1 and row["segment_ids"][row["rejected_index"]] == 2
  chosen_ids, _ = chat.render([{"role": "user", "content": pair["prompt"]},
                               {"role": "assistant", "content": pair["chosen"]}], tok)
  assert row["tokens"][: len(chosen_ids)].tolist() == chosen_ids
  assert pair_row(pair, tok, 20) is None  # does not fit: skipped, never truncated


def test_reward_model_learns_a_separable_preference(reward_model):
  workdir, stdout = reward_model
  assert "validation pairs" in stdout
  metrics = read_metrics(workdir)
  evaluated = [m for m in metrics if "val_accuracy" in m]
  assert evaluated[-1]["val_accuracy"] >= 0.9 and evaluated[-1]["val_loss"] < 0.5
  assert metrics[-1]["loss"] < metrics[0]["loss"]
  summary = json.loads((workdir / "summary.json").read_text())  # every held-out pair, by kind ("file")
  assert summary["rm_accuracy_file"] >= 0.9 and summary["rm_pairs_file"] == 8  # 14 held out: 1 whole batch
  assert "held-out accuracy by kind: file" in stdout


def test_every_math_pair_kind_is_held_out(tokens_workdir):
  """The held-out split of generated math pairs has each rejection kind, to report accuracy per kind."""
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  pairs = math_preference_pairs(math_problems.generate_problems(600, 1, seed=0), seed=0)
  train_rows, held_out, _ = split_pairs(pairs, tok, 256, val_fraction=0.1)
  assert set(held_out) == set(REJECTIONS) and all(len(rows) >= 10 for rows in held_out.values())
  assert len(train_rows) + sum(map(len, held_out.values())) <= len(pairs)


def test_reward_model_resumes_exactly_after_kill_9(reward_model, rm_flags, tokens_workdir, tmp_path):
  killed_at = kill_9_after_checkpoint("rm", tmp_path, tokens_workdir, *rm_flags, step=4)
  assert 4 < killed_at < 16, "the run should have been killed part-way, past its first checkpoint"
  run_stage("rm", tmp_path, tokens_workdir, *rm_flags)
  assert 4 <= json.load(open(tmp_path / "summary.json"))["resumed_from"] <= killed_at
  # An epoch is 66 training pairs (8+ batches), so equal losses after the resume step also pin the data
  # position: a pipeline restarted from its first batch would give other losses.
  assert logged_losses(tmp_path) == logged_losses(reward_model[0])  # exactly, step for step


def test_generated_math_pairs_follow_the_file_pairs_and_no_pairs_at_all_is_an_error(tmp_path):
  rm = ml_collections.ConfigDict(dict(pairs="", math_problems=0, math_levels=(1,), math_seed=1))
  with pytest.raises(ConfigError, match="config.rm.pairs .* or config.rm.math_problems"):
    preference_pairs(rm, "rm")
  rm.math_problems = 5
  generated = preference_pairs(rm, "rm")
  assert len(generated) == 5 and all(p["chosen"] != p["rejected"] for p in generated)
  path = tmp_path / "pairs.jsonl"
  path.write_text(json.dumps({"prompt": "2+2?", "chosen": "4", "rejected": "5"}) + "\n")
  rm.pairs = str(path)
  assert [p["prompt"] for p in preference_pairs(rm, "rm")] == ["2+2?"] + [p["prompt"] for p in generated]


def test_the_reward_loss_reads_logits_only_with_a_logprob_weight():
  from lmjax import losses
  from lmjax.config import ConfigError
  from lmjax.train.reward_model import reward_loss
  assert reward_loss(0.0)[0] == "pairwise_bce" and not losses.LOSSES["pairwise_bce"].reads_logits
  assert reward_loss(1.0)[0] == "pairwise_bce_logprob" and losses.LOSSES["pairwise_bce_logprob"].reads_logits
  with pytest.raises(ConfigError, match="rm.logprob_weight"):
    reward_loss(-1.0)
