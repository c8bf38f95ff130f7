"""The speedrun's claims per seed: each seed's value, differences paired by seed, and "met on every seed"."""
import numpy as np

from lmjax.chain import claims, report


def _headline(sft_pass1, rl_pass1, wrong_step):
  return {"eval_sft.math_pass1": sft_pass1, "eval_rl.math_pass1": rl_pass1, "rm.rm_accuracy_wrong_step": wrong_step}


def test_each_claim_shows_every_seed_its_spread_and_whether_every_seed_met_the_target():
  text = claims.claims_table({0: _headline(0.70, 0.78, 0.95), 1: _headline(0.62, 0.65, 0.97)})
  lines = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()}
  assert lines["SFT math pass@1"] == (f"| SFT math pass@1 | 0.7 | 0.62 | {report.fmt(0.66)} ± "
                                      f"{report.fmt(float(np.std([0.7, 0.62], ddof=1)))} | yes (≥ 0.6) |")
  gains = [0.78 - 0.70, 0.65 - 0.62]  # paired by seed: seed 1 gains 3 points, below the 5-point target
  assert f"| {report.fmt(gains[0])} | {report.fmt(gains[1])} |" in lines["RL − SFT pass@1"]
  assert lines["RL − SFT pass@1"].endswith("| no (≥ 0.05) |")
  assert lines["RM accuracy: wrong step"].endswith("| yes (≥ 0.9) |")
  assert "RM accuracy: refusal" not in lines and "SFT math greedy" not in lines  # no run has these metrics
  lengths = claims.claims_table({0: {"rl.response_length": 24.5}})
  assert f"| RL response length (tokens, last iteration) | {report.fmt(24.5)} |" in lengths


def test_a_missing_seed_value_is_a_dash_and_no_metrics_means_no_table():
  text = claims.claims_table({0: _headline(0.7, 0.8, 0.9), 1: {"eval_sft.math_pass1": 0.5}})
  assert "| RL − SFT pass@1 | 0.1 | — |" in text.replace(report.fmt(0.8 - 0.7), "0.1")
  assert claims.claims_table({0: {"pretrain.val_loss": 5.0}}) is None
  assert claims.value({"a": 3.0, "b": 1.0}, "a - b") == 2.0 and claims.value({"a": 3.0}, "a - b") is None
