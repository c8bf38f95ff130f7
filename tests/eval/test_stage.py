"""`lmjax eval` end to end through the CLI: a base run gets val_loss / val_bpb equal to its pretraining log,
a chat run (the taught model saved as an SFT run of it) gets math_pass1 and the rest, and a run's ancestors
are found from relative paths; missing or wrong settings are clear errors."""
import json
import re

import jax
import pytest

from lmjax import cli
from lmjax.eval import model_run, stage
from lmjax.model import Transformer
from lmjax.train import checkpoint
from lmjax.train.setup import build_train_setup
from tests.conftest import REPO, cli_error, tiny_config

CONFIG = str(REPO / "configs" / "base.py")
TINY_EVAL = ["--config.eval.math_problems=4", "--config.eval.math_samples=2", "--config.rollout.batch=16",
             "--config.rollout.max_reply_tokens=96"]


def _eval(out, model_workdir, *overrides) -> dict:
  cli.main(["eval", "--config", CONFIG, "--workdir", str(out), f"--config.eval.model_workdir={model_workdir}",
            *overrides])
  return json.load(open(out / "eval.json"))


def test_a_base_run_gets_the_val_loss_and_bpb_its_pretraining_logged(uninterrupted, tmp_path):
  result = _eval(tmp_path, uninterrupted, "--config.eval.loss_batches=2")  # as many as pretraining used
  last = [json.loads(line) for line in open(uninterrupted / "metrics.jsonl") if "val_loss" in line][-1]
  assert (result["kind"], result["step"], result["tasks"]) == ("pretrain", 16, ["loss", "multiple_choice"])
  assert result["val_loss"] == pytest.approx(last["val_loss"], rel=1e-4)
  assert result["val_bpb"] == pytest.approx(last["val_bpb"], rel=1e-4)
  assert 0 <= result["mc_accuracy"] <= 1 and result["mc_chance"] == 0.25
  assert "| val_bpb |" in (tmp_path / "eval.md").read_text() and not (tmp_path / "samples.md").exists()


def _save_as_sft_run(workdir, taught, base_workdir) -> None:
  config, state, _ = taught
  config = config.copy_and_resolve_references()
  config.sft.base_workdir, config.mesh.fsdp = str(base_workdir), -1
  manager = checkpoint.make_manager(str(workdir / "checkpoints"), keep=1)
  checkpoint.save(manager, int(state.step), state, {})
  manager.wait_until_finished()
  (workdir / "config.json").write_text(config.to_json_best_effort())


def test_a_chat_run_gets_math_pass1_val_bpb_and_the_chat_tasks(right_model, uninterrupted,
                                                                tmp_path):
  run = tmp_path / "sft"
  _save_as_sft_run(run, right_model, uninterrupted)
  result = _eval(tmp_path / "eval", run, *TINY_EVAL, "--config.eval.tasks=('math', 'loss')")
  assert result["kind"] == "sft" and result["lineage"] == [str(run), str(uninterrupted)]
  assert result["math_greedy"] == 1.0 and result["math_pass1"] >= 0.5 and result["tool_call_validity"] >= 0.9
  assert result["val_bpb"] > 0 and result["val_tokens"] > 0  # on the shards of its pretraining run
  samples = (tmp_path / "eval" / "samples.md").read_text()
  assert samples.count("**user:**") == 6 and "[calculator]" in samples  # its worked solutions call the tool
  runs = model_run.lineage(str(run))
  chat = model_run.ModelRun(None, runs)
  assert stage.choose_tasks((), chat, "tokens") == ("math", "abstention", "multiple_choice", "loss")
  assert stage.choose_tasks((), chat, None) == ("math", "abstention", "multiple_choice")  # no shards: no loss
  assert stage.choose_tasks((), model_run.ModelRun(None, runs[1:]), "tokens") == ("loss", "multiple_choice")


def test_relative_base_workdirs_are_found_next_to_the_run(tmp_path):
  for name, fields in [("pre", {}), ("sft", {"sft": {"base_workdir": "runs/pre"}}),
                       ("rl", {"rl": {"base_workdir": "runs/sft"}})]:
    (tmp_path / "runs" / name).mkdir(parents=True)
    (tmp_path / "runs" / name / "config.json").write_text(json.dumps(fields))
  runs = model_run.lineage(str(tmp_path / "runs" / "rl"))
  expected = [("rl", "rl"), ("sft", "sft"), ("pre", "pretrain")]
  assert [(r.workdir, r.kind) for r in runs] == [(str(tmp_path / "runs" / n), k) for n, k in expected]
  assert model_run.sft_config(runs) is runs[1].config.sft


def test_missing_model_workdir_unknown_task_and_reward_models_are_clear_errors(uninterrupted,
                                                                               tmp_path, capsys):
  assert "config.eval.model_workdir is empty" in cli_error(capsys, cli.main,
                                                           ["eval", "--config", CONFIG, "--workdir", str(tmp_path)])
  assert "holds no config.json" in cli_error(capsys, _eval, tmp_path, tmp_path / "nowhere")
  assert re.search("unknown task.*mmlu", cli_error(capsys, _eval, tmp_path, uninterrupted,
                                                   "--config.eval.tasks=('loss', 'mmlu')"))
  rm = tmp_path / "rm"
  rm.mkdir()
  (rm / "config.json").write_text(json.dumps({"rm": {"base_workdir": str(uninterrupted)}}))
  assert "reward-model run" in cli_error(capsys, _eval, tmp_path, rm)


def test_an_rl_run_with_a_critic_is_evaluated_on_its_policy_backbone(tokens_workdir, tmp_path):
  config = tiny_config(tokens_workdir)
  config.rl.update(advantage="gae", base_workdir="elsewhere")
  setup = build_train_setup(config, scalar_head=True)
  state = setup.init()
  manager = checkpoint.make_manager(str(tmp_path / "checkpoints"), keep=1)
  checkpoint.save(manager, 3, state, {})
  manager.wait_until_finished()
  (tmp_path / "config.json").write_text(config.to_json_best_effort())
  [run] = model_run.lineage(str(tmp_path))  # its base run is not found: the lineage stops there
  loaded = model_run.load_policy(run)
  assert run.kind == "rl" and loaded.step == 3
  assert isinstance(loaded.model(), Transformer)
  assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), loaded.params, state.params["backbone"]))
