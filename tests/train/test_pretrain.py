"""The pretraining loop through the real CLI: it learns, logs, resumes exactly after `kill -9`, and a
NaN loss stops it with a clear message, keeping only good checkpoints."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from lmjax import cli
from lmjax.train.metrics import read_metrics
from tests.conftest import REPO
from tests.train.conftest import command, run_stage, subprocess_env


def _command(workdir, tokens_workdir, *overrides):
  return command("pretrain", workdir, tokens_workdir, *overrides)


def _env():
  return subprocess_env()


def _run(workdir, tokens_workdir, *overrides, check=True):
  return run_stage("pretrain", workdir, tokens_workdir, *overrides, check=check)


def _losses(workdir):
  return {m["step"]: m["loss"] for m in read_metrics(workdir)}


def test_training_logs_every_step_and_validation_loss_falls(uninterrupted):
  metrics = read_metrics(uninterrupted)
  assert [m["step"] for m in metrics] == list(range(1, 17))
  for m in metrics:
    assert {"loss", "grad_norm", "param_norm", "lr", "tokens_seen", "tokens_per_s"} <= set(m)
  val = [m["val_loss"] for m in metrics if "val_loss" in m]
  assert len(val) == 4 and val[-1] < val[0] - 0.5
  summary = json.load(open(uninterrupted / "summary.json"))
  assert summary["steps"] == 16 and summary["val_bpb"] > 0
  assert sorted(os.listdir(uninterrupted / "checkpoints")) == ["12", "16"]


# ~55 s: two pretrain processes. In the default run tests/chain/test_stage_inputs.py's
# test_pretraining_and_sft_losses_agree_step_for_step_in_any_workdir pins the same: the shared chain's
# pretraining, killed with -9 after its step-4 checkpoint and resumed, matches an uninterrupted one exactly.
@pytest.mark.slow
def test_resume_after_kill_9_continues_exactly(uninterrupted, tokens_workdir, tmp_path):
  process = subprocess.Popen(_command(tmp_path, tokens_workdir), env=_env(), cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 240
  while time.time() < deadline and process.poll() is None:
    if (tmp_path / "metrics.jsonl").exists() and max(_losses(tmp_path), default=0) >= 6:
      break
    time.sleep(0.01)
  process.send_signal(signal.SIGKILL)
  process.wait()
  killed_at = max(_losses(tmp_path))
  assert 6 <= killed_at < 16, "the run should have been killed part-way, past its first checkpoint"
  _run(tmp_path, tokens_workdir)
  assert _losses(tmp_path) == _losses(uninterrupted)  # exactly, step for step


@pytest.mark.slow  # ~30 s: two pretrain processes
def test_pretrain_and_resume_in_a_file_url_workdir_match_a_local_run(uninterrupted, tokens_workdir, tmp_path):
  url = lambda path: f"file://{path}"
  inputs = (f"--config.data.tokenizer={url(tokens_workdir / 'tokenizer.model')}",
            f"--config.data.tokens_dir={url(tokens_workdir / 'tokens')}")
  _run(url(tmp_path / "run"), tokens_workdir, *inputs)
  shutil.rmtree(tmp_path / "run" / "checkpoints" / "16")  # as if killed after step 12's checkpoint
  _run(url(tmp_path / "run"), tokens_workdir, *inputs)
  assert json.loads((tmp_path / "run" / "summary.json").read_text())["resumed_from"] == 12
  assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["12", "16"]
  curves = lambda workdir: [(m["step"], m["loss"], m.get("val_loss")) for m in read_metrics(workdir)]
  assert curves(tmp_path / "run") == curves(uninterrupted)  # exactly, step for step
  assert not (REPO / "file:").exists()  # never a local folder named after the URL


def test_nan_loss_stops_with_a_clear_message_and_keeps_good_checkpoints(tokens_workdir, tmp_path):
  result = _run(tmp_path, tokens_workdir, "--config.optim.lr=1e30", "--config.optim.clip_norm=0",
                "--config.checkpoint.every_steps=1", "--config.schedule.warmup_steps=1", check=False)
  assert result.returncode != 0
  assert "loss is nan at step" in result.stderr.lower() or "loss is inf at step" in result.stderr.lower()
  assert "Traceback" not in result.stderr
  bad_step = int(result.stderr.split(" at step ")[1].split(";")[0])
  kept = sorted(int(s) for s in os.listdir(tmp_path / "checkpoints") if s.isdigit())
  assert kept and max(kept) == bad_step - 2  # the checkpoint whose parameters gave the NaN is gone
  assert f"last good checkpoint is step {bad_step - 2}" in result.stderr


def test_sample_prints_a_continuation_of_the_prompt(uninterrupted, tokens_workdir):
  result = subprocess.run([sys.executable, "-m", "lmjax.cli", "sample", "--workdir", str(uninterrupted),
                           "--prompt", "In the beginning", "--config.sample.max_new_tokens=12"],
                          env=_env(), capture_output=True, text=True, timeout=300, cwd=REPO, check=True)
  assert result.stdout.startswith("In the beginning") and len(result.stdout.strip()) > len("In the beginning")


def test_missing_tokens_is_a_clear_error(tmp_path, tokens_workdir, capsys):
  argv = _command(tmp_path, tokens_workdir, f"--config.data.tokens_dir={tmp_path / 'nowhere'}")[3:]
  with pytest.raises(SystemExit) as exited:
    cli.main(argv)
  assert exited.value.code == 2 and "run `lmjax tokenize` first" in capsys.readouterr().err


def test_mistyped_override_is_a_clear_error(tmp_path, tokens_workdir, capsys):
  with pytest.raises(SystemExit) as exited:
    cli.main(_command(tmp_path, tokens_workdir, "--config.optim.lrr=1")[3:])
  assert exited.value.code == 2
  assert "unknown config field config.optim.lrr; did you mean lr" in capsys.readouterr().err


def test_tokens_next_and_chat_commands_work_on_a_trained_run(uninterrupted, capsys, monkeypatch):
  cli.main(["tokens", "--workdir", str(uninterrupted), "--no-colour", "In the beginning"])
  assert "bytes per token" in capsys.readouterr().out
  cli.main(["next", "--workdir", str(uninterrupted), "In the beginning", "--continuation", " God", "--top-k", "3"])
  out = capsys.readouterr().out
  assert out.count("%") >= 4 and (uninterrupted / "next_token.png").exists()
  assert (uninterrupted / "next_token_heatmap.png").exists()
  lines = iter(["Hello", ""])
  monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
  cli.main(["chat", "--workdir", str(uninterrupted), "--system", "Be brief.", "--config.sample.max_new_tokens=8"])
  assert "assistant> " in capsys.readouterr().out


def test_each_steps_metrics_are_read_after_the_next_step_is_queued(tokens_workdir, tmp_path, monkeypatch):
  import jax

  from lmjax.train import loop
  events, make_step, device_get = [], loop.make_train_step, jax.device_get

  def recording_step(*args, **kwargs):
    step = make_step(*args, **kwargs)
    return lambda *a: events.append("d") or step(*a)

  def recording_get(tree):
    if isinstance(tree, dict) and "grad_norm" in tree:
      events.append("r")
    return device_get(tree)

  monkeypatch.setattr(loop, "make_train_step", recording_step)
  monkeypatch.setattr(jax, "device_get", recording_get)
  cli.main(command("pretrain", tmp_path, tokens_workdir, "--config.train.steps=6",
                   "--config.checkpoint.every_steps=4")[3:])
  # d: a step dispatched, r: a step's metrics read. Step s's are read after step s + 1 is dispatched, except
  # before a checkpoint (steps 4 and 6), which waits for its own step's loss.
  assert "".join(events) == "d" + "dr" + "dr" + "drr" + "d" + "drr"
  assert [m["step"] for m in read_metrics(tmp_path)] == list(range(1, 7))
