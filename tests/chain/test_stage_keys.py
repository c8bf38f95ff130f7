"""Stage keys: a field changes the key of the stage that reads it and of every stage downstream, nothing else."""
import shutil

import pytest

from lmjax.chain import cache, runner
from lmjax.config import ConfigError, load_config
from tests.conftest import REPO

SPEEDRUN = str(REPO / "configs" / "speedrun_cpu.py")


def _keys(tmp_path, *overrides) -> dict[str, str]:
  return {p.name: p.key for p in runner.plan(load_config(SPEEDRUN, overrides), str(tmp_path))}


def _changed(tmp_path, *overrides) -> set[str]:
  before, after = _keys(tmp_path), _keys(tmp_path, *overrides)
  return {name for name in before if before[name] != after[name]}


def test_an_rl_hyperparameter_recomputes_only_rl_and_its_evaluation(tmp_path):
  assert _changed(tmp_path, "rl.clip_eps=0.3") == {"rl", "eval_rl"}


@pytest.mark.parametrize("field", ["rollout.temperature=0.7", "math.levels=(2,)", "math.heldout_seed=7"])
def test_a_held_out_evaluation_setting_recomputes_rl_and_every_evaluation_alike(tmp_path, field):
  assert _changed(tmp_path, field) == {"rl", "eval_pretrain", "eval_sft", "eval_rl"}


def test_a_web_filter_threshold_recomputes_everything_downstream_of_cleaning(tmp_path):
  assert _changed(tmp_path, "clean.gopher_quality.min_doc_words=100") == set(_keys(tmp_path))


def test_a_stage_override_recomputes_that_stage_and_what_reads_it(tmp_path):
  assert _changed(tmp_path, "stage.sft.train.steps=300") == {"sft", "rm", "rl", "eval_sft", "eval_rl"}


def test_the_folders_the_chain_wires_in_are_not_part_of_any_key(tmp_path):
  assert _changed(tmp_path, "rl.base_workdir=elsewhere", "data.tokens_dir=elsewhere") == set()


def test_the_hf_architecture_an_import_records_is_part_of_no_key(tmp_path):
  assert _changed(tmp_path, "model.hf_architecture='mistral'") == set()


def test_the_in_training_validation_is_part_of_every_training_stage(tmp_path):
  assert _changed(tmp_path, "eval.every_steps=25") == {"pretrain", "probe", "sft", "rm", "rl", "eval_pretrain",
                                                       "eval_sft", "eval_rl"}


def test_a_probe_setting_recomputes_the_probe_and_the_sft_it_feeds(tmp_path):
  assert _changed(tmp_path, "probe.samples_per_question=8") == {"probe", "sft", "rm", "rl", "eval_sft", "eval_rl"}
  assert _changed(tmp_path, "probe.samples_per_question=8", "sft.mixture.idk=0.0") >= {"sft"}
  assert "probe" not in runner.plan(load_config(SPEEDRUN, ["sft.mixture.idk=0.0"]), str(tmp_path))[5].inputs


def test_the_reward_model_is_an_input_of_rl_only_when_it_gives_the_reward(tmp_path):
  assert "rl" not in _changed(tmp_path, "stage.rm.train.steps=50")
  with_rm_reward = lambda *overrides: _keys(tmp_path, "rl.reward=reward_model", *overrides)["rl"]
  assert with_rm_reward() != with_rm_reward("stage.rm.train.steps=50")


def test_data_is_identified_by_content_not_path(tmp_path):
  original = REPO / "lmjax" / "assets" / "corpus"
  copy = shutil.copytree(original, tmp_path / "corpus")
  assert cache.data_fingerprint(f"{original}/*.jsonl.gz") == cache.data_fingerprint(f"{copy}/*.jsonl.gz")
  (copy / "fortunes.jsonl.gz").write_bytes(b"changed")
  assert cache.data_fingerprint(f"{original}/*.jsonl.gz") != cache.data_fingerprint(f"{copy}/*.jsonl.gz")


def test_a_stage_override_of_a_field_the_schema_lacks_is_an_error(tmp_path):
  config = load_config(SPEEDRUN)
  with config.unlocked():
    config.stage.sft.train.stepz = 3
  with pytest.raises(ConfigError, match=r"config.stage.sft.train.stepz"):
    runner.plan(config, str(tmp_path))


def test_a_stage_before_its_inputs_is_an_error(tmp_path):
  with pytest.raises(ConfigError, match="stage sft reads the output of \\['pretrain', 'probe'\\]"):
    runner.plan(load_config(SPEEDRUN, ["chain.stages=('sft', 'pretrain')"]), str(tmp_path))
  with pytest.raises(ConfigError, match="unknown stages \\['finetune'\\]"):
    runner.plan(load_config(SPEEDRUN, ["chain.stages=('finetune',)"]), str(tmp_path))


def test_the_dpo_route_runs_dpo_and_its_evaluation_in_place_of_rm_and_rl(tmp_path):
  names = lambda *overrides: [p.name for p in runner.plan(load_config(SPEEDRUN, overrides), str(tmp_path))]
  assert names()[4:] == ["probe", "sft", "rm", "rl", "eval_pretrain", "eval_sft", "eval_rl"]
  assert names("chain.preference=dpo")[4:] == ["probe", "sft", "dpo", "eval_pretrain", "eval_sft", "eval_dpo"]
  up_to_sft = ("clean", "tokenizer", "tokenize", "pretrain", "probe", "sft", "eval_pretrain", "eval_sft")
  rm_ppo, dpo = _keys(tmp_path), _keys(tmp_path, "chain.preference=dpo")
  assert {s: rm_ppo[s] for s in up_to_sft} == {s: dpo[s] for s in up_to_sft}  # both routes share them


def test_a_dpo_hyperparameter_recomputes_only_dpo_and_its_evaluation(tmp_path):
  keys = lambda *overrides: _keys(tmp_path, "chain.preference=dpo", *overrides)
  before, after = keys(), keys("dpo.beta=0.3")
  assert {name for name in before if before[name] != after[name]} == {"dpo", "eval_dpo"}


def test_an_unknown_preference_route_is_an_error_naming_the_field(tmp_path):
  with pytest.raises(ConfigError, match="config.chain.preference='ppo'; use one of rm_ppo, dpo"):
    _keys(tmp_path, "chain.preference=ppo")
