"""experiments/benchmarks/gpu_check.py --tiny on CPU: every check runs once and none fails, attention
implementations agree with the float32 reference, and the measured figures are sane (speed is never
asserted: it is the script's output, not a property of the code)."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # one --tiny run of every check: ~35 s

CPU_CHECKS = ["device", "attention xla 1b", "attention blocked 1b", "attention xla 8b", "attention blocked 8b",
              "train llama3_1b", "eval llama3_1b", "decode scanned", "decode unscanned",
              "rollout memory speedrun_cpu", "rollout memory speedrun_pod"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  """(the process's result, its JSON) of one --tiny run on one CPU device."""
  out = tmp_path_factory.mktemp("gpu_check") / "checks.json"
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
  result = subprocess.run([sys.executable, "experiments/benchmarks/gpu_check.py", "--tiny", "--json", str(out)],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  return result, json.loads(out.read_text())


def by_name(summary: dict) -> dict:
  return {c["check"]: c for c in summary["checks"]}


def test_every_cpu_check_runs_exactly_once_and_none_fails(tiny_run):
  result, summary = tiny_run
  names = [c["check"] for c in summary["checks"]]
  assert sorted(names) == sorted(CPU_CHECKS)  # cudnn is not listed on CPU
  assert [c["check"] for c in summary["checks"] if c["status"] != "ok"] == []
  lines = [line for line in result.stdout.splitlines() if line.startswith("gpu_check: ")]
  for name in CPU_CHECKS:
    assert sum(line.startswith(f"gpu_check: {name}: ") for line in lines) == 1, name
  assert "machine" in summary and "date" in summary


def test_attention_implementations_match_the_float32_reference(tiny_run):
  _, summary = tiny_run
  for name, check in by_name(summary).items():
    if name.startswith("attention "):
      for quantity, diff in check["max_abs_diff"].items():
        # bfloat16 carries 8 bits: allow 2^-5 of the reference's largest magnitude (measured at --tiny: ~2^-8)
        assert diff < 2**-5 * check["reference_max_abs"][quantity], (name, quantity, diff)
      assert check["fwd_bwd_ms"] > 0 and check["temp_bytes"] > 0


def test_train_eval_and_decode_figures_are_sane(tiny_run):
  _, summary = tiny_run
  checks = by_name(summary)
  train = checks["train llama3_1b"]
  assert train["tokens_per_s"] > 0 and 0 < train["mfu"] <= 1
  assert train["compiled_bytes"] <= train["budget_bytes"]
  assert checks["eval llama3_1b"]["fits"] and checks["eval llama3_1b"]["compiled_bytes"] > 0
  assert checks["decode scanned"]["tokens_per_s"] > 0 and checks["decode unscanned"]["tokens_per_s"] > 0
  assert checks["decode unscanned"]["ratio_to_scanned"] > 0


def test_the_pod_rollouts_need_more_memory_than_the_cpu_ones(tiny_run):
  _, summary = tiny_run
  checks = by_name(summary)
  pod, cpu = checks["rollout memory speedrun_pod"], checks["rollout memory speedrun_cpu"]
  rows = lambda c: c["batch"] * c["cache_length"]
  assert rows(pod) > rows(cpu)  # more slots, longer rows
  assert pod["bytes"] > cpu["bytes"] > 0
