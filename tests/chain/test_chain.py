"""The tiny chain end to end through the CLI: killed mid-pretraining it resumes where it stopped, SIGTERM stops
it with the preemption exit code once the stage saved, a sweep (two RL clip values and the DPO route) shares
every stage but the ones its variants change, and the report carries every stage's numbers."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lmjax.chain import cache, report
from lmjax.train import preemption
from lmjax.train.metrics import read_metrics
from tests.chain.conftest import ENV, TINY_CHAIN, lmjax
from tests.conftest import REPO

@pytest.mark.slow  # ~2 min on 2 cores: the chain's first four stages, twice
def test_sigterm_in_pretraining_stops_the_chain_with_75_after_saving_and_the_rerun_resumes_there(tmp_path):
  argv = ["run", "--config", TINY_CHAIN, "--workdir", str(tmp_path), "--until", "pretrain",
          "--config.train.steps=16"]  # steps to spare: the signal lands before the stage ends
  process = subprocess.Popen([sys.executable, "-m", "lmjax.cli", *argv], env=ENV, cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  deadline = time.time() + 600
  while time.time() < deadline and process.poll() is None:
    if any(max((m["step"] for m in read_metrics(d)), default=0) >= 2 for d in tmp_path.glob("stages/pretrain-*")):
      break
    time.sleep(0.05)
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=300)
  assert process.returncode == preemption.EXIT_CODE, stderr[-3000:]
  assert "SIGTERM received; saving a checkpoint" in stderr and "Traceback" not in stderr
  stopped = int(stderr.split("saving the checkpoint of step ")[1].split()[0])
  [stage_dir] = tmp_path.glob("stages/pretrain-*")
  assert 2 <= stopped < 16 and (stage_dir / "checkpoints" / str(stopped) / "commit_success.txt").exists()
  assert not cache.is_done(str(stage_dir))
  rerun = lmjax(*argv)
  assert rerun.returncode == 0, rerun.stderr[-3000:]
  with open(stage_dir / "summary.json") as f:
    assert json.load(f)["resumed_from"] == stopped
  assert [m["step"] for m in read_metrics(stage_dir)] == list(range(1, 17)) and cache.is_done(str(stage_dir))


def _chain(workdir) -> dict[str, dict]:
  with open(workdir / "chain.json") as f:
    return {s["stage"]: s for s in json.load(f)["stages"]}


def test_a_killed_chain_resumes_at_the_interrupted_stage_from_its_checkpoint(sweep):
  first = _chain(sweep / "eps_0.1")
  assert [s for s in first if first[s]["cached"]] == ["clean", "tokenizer", "tokenize"]
  with open(os.path.join(first["pretrain"]["dir"], "summary.json")) as f:
    assert json.load(f)["resumed_from"] == 4
  with open(os.path.join(first["pretrain"]["dir"], "metrics.jsonl")) as f:
    assert [json.loads(line)["step"] for line in f] == list(range(1, 9))


def test_a_sweep_computes_the_stages_its_variants_share_once(sweep):
  second, dpo = _chain(sweep / "eps_0.3"), _chain(sweep / "dpo")
  assert [s for s in second if not second[s]["cached"]] == ["rl", "eval_rl"]
  assert [s for s in dpo if not dpo[s]["cached"]] == ["dpo", "eval_dpo"]
  folders = sorted(p.name.split("-")[0] for p in (sweep / "stages").iterdir())
  assert folders == ["clean", "dpo", "eval_dpo", "eval_pretrain", "eval_rl", "eval_rl", "eval_sft", "pretrain",
                     "probe", "rl", "rl", "rm", "sft", "tokenize", "tokenizer"]
  table = (sweep / "sweep.md").read_text()
  assert "| rl.clip_eps | 0.1 | 0.3 |" in table and "rl.heldout_pass1" in table


def test_the_dpo_route_trains_dpo_from_the_shared_sft_run_and_evaluates_it_as_the_final_policy(sweep):
  dirs, rm_ppo = report.stage_dirs(str(sweep / "dpo")), report.stage_dirs(str(sweep / "eps_0.1"))
  assert "rm" not in dirs and "rl" not in dirs and dirs["sft"] == rm_ppo["sft"]
  with open(os.path.join(dirs["eval_dpo"], "eval.json")) as f:
    results = json.load(f)
  assert results["kind"] == "dpo" and results["model_workdir"] == dirs["dpo"] and "math_pass1" in results
  assert [m["step"] for m in read_metrics(dirs["dpo"])][-1] == 4
  text = (sweep / "dpo" / "report.md").read_text()
  assert "## Preference optimisation" in text and "| eval_dpo |" in text and "### Sample conversations (dpo)" in text


def test_the_report_has_every_stages_numbers_and_plots(sweep):
  run = sweep / "eps_0.1"
  text = (run / "report.md").read_text()
  dirs = report.stage_dirs(str(run))
  with open(os.path.join(dirs["clean"], "stats.json")) as f:
    stats = json.load(f)
  assert f"{stats['docs_read']:,} documents read, {stats['docs_written']:,} kept" in text
  with open(os.path.join(dirs["tokenizer"], "tokenizer_summary.json")) as f:
    assert f"{json.load(f)['held_out_bytes_per_token']:.4g}" in text
  for stage, key in (("pretrain", "val_bpb"), ("sft", "val_loss"), ("rm", "loss"), ("rl", "heldout_pass1")):
    value = report.last(read_metrics(dirs[stage]), key)
    assert f"{value:.4g}" in text, (stage, key)
  for image in ("pretrain.png", "sft.png", "rm.png", "rl.png"):
    assert f"({image})" in text and (run / image).stat().st_size > 1000
  for stage, key in (("eval_pretrain", "val_bpb"), ("eval_sft", "math_pass1"), ("eval_rl", "mc_accuracy")):
    with open(os.path.join(dirs[stage], "eval.json")) as f:
      assert f"{json.load(f)[key]:.4g}" in text, (stage, key)
  assert "### Sample conversations (sft)" in text
  with open(os.path.join(dirs["probe"], "probe_report.json")) as f:
    probed = json.load(f)
  assert f"SFT gets {probed['dont_know_conversations']} \"I don't know\" conversations" in text
  with open(os.path.join(dirs["sft"], "config.json")) as f:  # the probe's conversations went into SFT
    assert json.load(f)["sft"]["idk_conversations"] == os.path.join(dirs["probe"], "idk_conversations.jsonl")
  for key in ("context_accuracy", "abstention_rate"):
    assert f"| {key} |" in text
  for stage in dirs:
    assert f"| {stage} |" in text


def test_every_stage_logs_mfu_as_a_fraction_and_counts_its_flops(sweep):
  dirs = report.stage_dirs(str(sweep / "eps_0.1"))
  logged = [r["mfu"] for stage in ("pretrain", "sft", "rm") for r in read_metrics(dirs[stage]) if "mfu" in r]
  assert logged and all(0 < mfu <= 1 for mfu in logged), logged
  flops = report.stage_flops(str(sweep / "eps_0.1"))
  assert set(flops) == {"pretrain", "sft", "rm", "rl"} and all(f > 0 for f in flops.values())


def test_a_dry_run_lists_every_stage_as_cached_and_runs_nothing(sweep):
  result = lmjax("run", "--config", TINY_CHAIN, "--workdir", str(sweep / "eps_0.1"), "--stage-root",
                  str(sweep / "stages"), "--config.rl.clip_eps=0.1", "--dry-run", check=True)
  assert "11 stages, 11 cached" in result.stdout
