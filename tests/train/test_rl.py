"""`lmjax rl` through the CLI on the tiny pretrained run: it logs the RL metrics, its group-relative and GAE
variants both run, a stop (or a SIGTERM) and rerun continue exactly, LoRA RL trains adapters on the frozen
reference, and bad settings are clear errors."""
import json
import signal
import subprocess
import time

import pytest

from lmjax.train import preemption
from lmjax.train.metrics import read_metrics
from tests.conftest import REPO
from tests.train.conftest import command, run_stage, subprocess_env

TINY_RL = ["--config.train.seq_len=128", "--config.train.batch_size=8", "--config.rl.prompts_per_iteration=4",
           "--config.rl.group_size=4", "--config.rollout.max_new_tokens=16",
           "--config.rollout.max_reply_tokens=32", "--config.rollout.max_tool_calls=1", "--config.rl.heldout_problems=4", "--config.rl.eval_samples=2",
           "--config.rl.eval_every=1", "--config.rl.train_problems=64", "--config.schedule.decay=constant",
           "--config.schedule.warmup_steps=0", "--config.optim.lr=1e-3"]


def _rl(workdir, base, tokens_workdir, *overrides, check=True):
  return run_stage("rl", workdir, tokens_workdir, f"--config.rl.base_workdir={base}", *TINY_RL, *overrides,
                   check=check)


@pytest.fixture(scope="module")
def three_iterations(uninterrupted, tokens_workdir, tmp_path_factory):
  workdir = tmp_path_factory.mktemp("rl")
  _rl(workdir, uninterrupted, tokens_workdir, "--config.rl.iterations=3")
  return workdir


def test_rl_logs_reward_heldout_accuracy_kl_and_clipping(three_iterations):
  metrics = read_metrics(three_iterations)
  assert [m["step"] for m in metrics] == [0, 1, 2, 3]  # step 0: held-out accuracy before any update
  for m in metrics[1:]:
    for key in ("reward", "heldout_pass1", "heldout_pass_at_g", "heldout_greedy", "kl_ref", "clip_fraction", "approx_kl",
                "entropy", "response_length", "loss", "grad_norm", "updates"):
      assert key in m, key
    assert 0 <= m["reward"] <= 1 and m["response_length"] > 0
  assert metrics[-1]["updates"] == 3 * (4 * 4 // 8)
  assert metrics[1]["kl_ref"] == pytest.approx(0, abs=1e-5)  # the first update starts at the reference
  assert json.load(open(three_iterations / "summary.json"))["iterations"] == 3


def test_rl_stopped_and_rerun_continues_exactly(three_iterations, uninterrupted, tokens_workdir, tmp_path):
  _rl(tmp_path, uninterrupted, tokens_workdir, "--config.rl.iterations=2")
  _rl(tmp_path, uninterrupted, tokens_workdir, "--config.rl.iterations=3")
  resumed, straight = read_metrics(tmp_path), read_metrics(three_iterations)
  drop = ("iteration_s", "rollout_s", "train_s")
  assert [{k: v for k, v in m.items() if k not in drop} for m in resumed] == \
         [{k: v for k, v in m.items() if k not in drop} for m in straight]


@pytest.mark.slow  # ~35 s: RL stopped and rerun
def test_rl_sigterm_stops_after_the_iteration_and_the_rerun_continues_exactly(three_iterations, uninterrupted,
                                                                             tokens_workdir, tmp_path):
  flags = (f"--config.rl.base_workdir={uninterrupted}", *TINY_RL, "--config.rl.iterations=3")
  process = subprocess.Popen(command("rl", tmp_path, tokens_workdir, *flags), env=subprocess_env(), cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 240
  while not read_metrics(tmp_path) and process.poll() is None and time.time() < deadline:
    time.sleep(0.01)  # step 0, the held-out accuracy before any update, is logged before iteration 1 starts
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=240)
  assert process.returncode == preemption.EXIT_CODE, stderr[-3000:]
  assert "saving the checkpoint of iteration 1 in" in stderr
  _rl(tmp_path, uninterrupted, tokens_workdir, "--config.rl.iterations=3")
  drop = ("iteration_s", "rollout_s", "train_s")
  assert [{k: v for k, v in m.items() if k not in drop} for m in read_metrics(tmp_path)] == \
         [{k: v for k, v in m.items() if k not in drop} for m in read_metrics(three_iterations)]


def test_rl_with_a_critic_uses_gae_and_the_value_loss(uninterrupted, tokens_workdir, tmp_path):
  _rl(tmp_path, uninterrupted, tokens_workdir, "--config.rl.iterations=1", "--config.rl.advantage=gae")
  last = read_metrics(tmp_path)[-1]
  assert last["value_loss"] >= 0 and last["updates"] == 2  # the tiny model earns no reward: see test_experience


def test_rl_can_take_its_reward_from_a_reward_model_run(reward_model, uninterrupted, tokens_workdir,
                                                        tmp_path):
  rm_workdir, _ = reward_model
  _rl(tmp_path, uninterrupted, tokens_workdir, "--config.rl.iterations=1", "--config.rl.reward=reward_model",
      f"--config.rl.reward_model_workdir={rm_workdir}", "--config.train.seq_len=96")
  last = read_metrics(tmp_path)[-1]
  assert last["updates"] == 2 and 0 <= last["correct"] <= 1
  assert last["reward"] not in (0.0, 1.0)  # a reward model's mean score, not the verifier's share correct


def test_minibatches_that_do_not_divide_the_rollouts_are_a_clear_error(uninterrupted, tokens_workdir, tmp_path):
  result = _rl(tmp_path, uninterrupted, tokens_workdir, "--config.train.batch_size=5", check=False)
  assert result.returncode != 0 and "train.batch_size=5" in result.stderr


@pytest.mark.slow  # ~30 s: two LoRA RL iterations (LoRA SFT stays in the default run)
def test_lora_rl_trains_adapters_on_the_frozen_reference_and_its_run_loads_merged(uninterrupted, tokens_workdir,
                                                                                 tmp_path):
  from lmjax.config import load_saved_config
  from lmjax.infer.load import load_model
  _rl(tmp_path, uninterrupted, tokens_workdir, "--config.rl.iterations=2", "--config.model.lora.rank=4",
      "--config.optim.lr=1e-2")
  metrics = read_metrics(tmp_path)
  assert [m["step"] for m in metrics] == [0, 1, 2] and metrics[1]["kl_ref"] == pytest.approx(0, abs=1e-6)
  assert metrics[2]["kl_ref"] > 0  # the adapters moved the policy away from the frozen base
  config = load_saved_config(str(tmp_path))
  assert config.model.lora.base_workdir == str(uninterrupted)
  assert load_model(config, str(tmp_path)).step == 2


def test_lora_with_a_critic_is_refused_naming_the_field(uninterrupted, tokens_workdir, tmp_path):
  done = _rl(tmp_path, uninterrupted, tokens_workdir, "--config.rl.advantage=gae", "--config.model.lora.rank=4",
             check=False)
  assert done.returncode == 2 and "config.model.lora.rank=4: LoRA adapts a plain transformer" in done.stderr


def test_rl_skipping_uniform_groups_trains_on_none_when_every_group_earns_the_same(uninterrupted, tokens_workdir,
                                                                                   tmp_path):
  """The tiny model earns reward 0 on every reply, so every group is uniform: nothing is trained on, no
  optimizer step is taken, and the run still logs and evaluates."""
  _rl(tmp_path, uninterrupted, tokens_workdir, "--config.rl.iterations=1", "--config.rl.skip_uniform_groups=True")
  last = read_metrics(tmp_path)[-1]
  assert last["uniform_groups"] == 1.0 and last["trained_rows"] == 0 and last["updates"] == 0
  assert "heldout_pass1" in last and "loss" not in last


def test_skipping_uniform_groups_with_a_critic_is_refused_naming_the_field(uninterrupted, tokens_workdir, tmp_path):
  result = _rl(tmp_path, uninterrupted, tokens_workdir, "--config.rl.advantage=gae",
               "--config.rl.skip_uniform_groups=True", check=False)
  assert result.returncode != 0 and "config.rl.skip_uniform_groups" in result.stderr
