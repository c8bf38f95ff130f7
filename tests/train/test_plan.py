"""`lmjax plan`: its memory figures are the compiled train step's and the shapes' own, its FLOPs survive loops
(scan, accumulation), a plan that does not fit says so with a change that does, one layer's attention memory
is shown with the compiled and a fused kernel, and the 8B preset plans on 256 fake devices through the real
CLI."""
import json
import math
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from lmjax import cli, losses
from lmjax.chain.stages import stage_config
from lmjax.config import load_config
from lmjax.model import ModelConfig, param_count
from lmjax.sharding import make_mesh
from lmjax.train import hardware, plan
from lmjax.train.hardware import CHIPS, Chip
from lmjax.train.plan import attention_memory, changes, compiled, flops, output
from lmjax.train.setup import build_train_setup
from lmjax.train.step import make_train_step
from tests.conftest import REPO, tiny_config


def _config(mesh=(1, 8, 1), **fields):
  config = tiny_config()
  config.mesh.data, config.mesh.fsdp, config.mesh.tensor = mesh
  config.train.update(batch_size=16, seq_len=128)
  return changes.variant(config, **fields)


def _analytic_param_bytes(config, fsdp: int) -> int:
  """float32 parameters, every matrix split fsdp ways along its embed axis, the norm scales whole."""
  m = config.model
  h = m.embed_dim // m.num_heads
  matrices = (2 * m.vocab_size * m.embed_dim + m.num_layers * (
      2 * m.embed_dim * m.num_heads * h + 2 * m.embed_dim * m.num_kv_heads * h + 3 * m.embed_dim * m.mlp_dim))
  norms = (2 * m.num_layers + 1) * m.embed_dim
  return 4 * (matrices // fsdp + norms)


def test_plan_memory_equals_the_shapes_and_the_train_loops_compiled_step():
  config = _config()
  planned = compiled.measure_memory(config, jax.devices())
  assert planned.params == _analytic_param_bytes(config, fsdp=8)
  assert planned.opt_state - 2 * planned.params in range(0, 64)  # AdamW's m and v, plus step counters
  assert planned.batch == 5 * 4 * 16 * 128 // 8
  # + the int32 step; the rng key is unused by next_token, and jit drops unused arguments
  assert planned.arguments == planned.params + planned.opt_state + planned.batch + 4

  # The same step compiled the way the train loop does it, from real arrays, reports the same memory.
  setup = build_train_setup(config, devices=jax.devices())
  step = make_train_step(setup.graphdef, losses.next_token, setup.optimizer, setup.shardings,
                         batch_sharding=setup.batch_sharding, lr_schedule=setup.schedule)
  batch = {k: jax.device_put(np.zeros(v.shape, v.dtype), setup.batch_sharding)
           for k, v in compiled.abstract_batch(config, setup.batch_sharding).items()}
  real = step.lower(setup.init(), batch, jax.random.key(0)).compile().memory_analysis()
  assert (real.argument_size_in_bytes, real.temp_size_in_bytes) == (planned.arguments, planned.temporaries)
  assert planned.total == real.argument_size_in_bytes + real.temp_size_in_bytes + \
      real.output_size_in_bytes - real.alias_size_in_bytes
  assert planned.temporaries > planned.params  # activations are there, not only gradients


def test_scanned_and_accumulated_flops_equal_the_loop_free_step():
  devices = jax.devices()
  direct = flops.measure_flops(_config(), devices)  # no loops: XLA's cost analysis counts everything
  looped = flops.measure_flops(_config(**{"model.scan_layers": True, "train.grad_accum_steps": 2}), devices)
  assert looped == pytest.approx(direct, rel=0.02)  # only the optimizer's few FLOPs are counted twice
  m = tiny_config().model
  six_nt = 6 * (param_count(ModelConfig.from_config(m)) - m.vocab_size * m.embed_dim) * 16 * 128 / 8
  assert 1.0 < direct / six_nt < 1.5  # 6·N·T plus attention and the optimizer
  recomputed = flops.measure_flops(_config(**{"model.remat": "full"}), devices)
  assert 1.15 < recomputed / direct < 1.4  # full remat reruns the blocks' forward (~+1/3 of their FLOPs)


@pytest.mark.slow  # ~47 s: it compiles each candidate change
def test_a_plan_that_does_not_fit_says_so_and_proposes_a_change_that_fits(capsys):
  config = _config(**{"train.seq_len": 512, "model.scan_layers": True})
  devices = jax.devices()
  none = compiled.measure_memory(config, devices).total
  full = compiled.measure_memory(changes.variant(config, **{"model.remat": "full"}), devices).total
  assert full < 0.8 * none  # rematerialising the scanned blocks frees most of the activations
  chip = Chip("a small test chip", hbm_bytes=(none + full) // 2, peak_flops=1e12)
  result, suggestion = plan.run(config, devices=8, chip=chip, flops=False)
  out = capsys.readouterr().out
  assert "DOES NOT FIT" in out and not compiled.fits(result, chip)
  change, fitted = suggestion
  assert "model.remat" in change and compiled.fits(fitted, chip)
  assert f"smallest change that fits: {changes.overrides_text(change)}" in out


def test_candidate_changes_go_from_remat_to_fsdp_to_micro_batches():
  config = _config(mesh=(2, 4, 1))
  candidates = changes.candidate_changes(config, (2, 4, 1))
  assert candidates[:4] == [{"model.remat": "dots_saveable"}, {"model.remat": "dots_no_batch"},
                         {"model.remat": "full"}, {"mesh.data": 1, "mesh.fsdp": 8, "mesh.tensor": 1}]
  assert candidates[4] == {"train.grad_accum_steps": 2}  # micro-batch 8 still splits over 8 data-parallel ways
  assert all(16 // c.get("train.grad_accum_steps", 1) % 8 == 0 for c in candidates)


def test_cli_plan_prints_the_memory_and_flops(capsys, monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "")  # the command sets it; keep the test process's environment as it was
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  cli.main(["plan", "--config", str(REPO / "tests" / "train" / "tiny_config.py"),  # --devices: the mesh's 8
            "--mesh", "data=2,fsdp=4,tensor=1", "--chip", "v5e"])
  out = capsys.readouterr().out
  assert "mesh data=2 fsdp=4 tensor=1 (8 devices) on TPU v5e" in out and ": fits" in out
  assert "FLOPs (compiled)" in out and "MFU" in out
  assert "attention, one layer's forward + backward per device (1 rows x 64 tokens" in out
  assert "  blocked " in out and "  splash (TPU v5e runs it) " in out


@pytest.mark.slow  # ~55 s on an idle 2-core machine
def test_llama3_8b_plans_for_its_declared_hardware_with_no_other_flag():
  start = time.perf_counter()
  done = subprocess.run([sys.executable, "-m", "lmjax.cli", "plan", "--config", str(REPO / "configs" / "llama3_8b.py"),
                         "--config.runtime.compilation_cache_dir="],  # measure the compile, leave ~/.cache alone
                        capture_output=True, text=True, timeout=900, cwd=REPO)
  seconds = time.perf_counter() - start
  assert done.returncode == 0, done.stderr[-3000:]
  assert "8.03B parameters" in done.stdout and "(256 devices) on TPU v5p" in done.stdout
  assert ": fits" in done.stdout or "smallest change that fits" in done.stdout, done.stdout
  assert "  pretrain  train " in done.stdout and "  pretrain  eval " in done.stdout
  assert "(2 rows x 8192 tokens, 32 query / 8 key-value heads;" in done.stdout
  gib = {line.split()[0]: float(line.split("GiB")[0].split()[-1]) for line in done.stdout.splitlines()
         if line.startswith(("  blocked ", "  splash (TPU v5p runs it) "))}
  assert gib["splash"] < gib["blocked"] / 5  # flash attention holds no [b, n, t, t] scores
  print(done.stdout, f"\nwall time {seconds:.0f} s")
  assert math.isfinite(seconds)


SHIPPED_MODEL_CONFIGS = sorted(p.name for p in (REPO / "configs").glob("*.py")
                               if p.name not in ("__init__.py", "base.py", "clean.py"))


@pytest.mark.slow  # minutes each on 2 cores: the chain configs compile every stage's steps
@pytest.mark.parametrize("name", SHIPPED_MODEL_CONFIGS)
def test_every_shipped_config_fits_at_every_stage_on_its_declared_hardware(name):
  done = subprocess.run([sys.executable, "-m", "lmjax.cli", "plan", "--config", str(REPO / "configs" / name),
                         "--json", "--config.runtime.compilation_cache_dir="],
                        capture_output=True, text=True, timeout=1800, cwd=REPO)
  assert done.returncode == 0, done.stderr[-3000:]
  steps = json.loads(done.stdout.strip().splitlines()[-1])["steps"]
  assert {("pretrain", "train"), ("pretrain", "eval")} <= {(s["stage"], s["step"]) for s in steps}
  assert [s for s in steps if not s["fits"]] == []


def test_every_config_declares_hardware_the_chip_table_knows():
  for path in sorted((REPO / "configs").glob("*.py")):
    if path.name in ("__init__.py", "clean.py"):
      continue
    hardware = load_config(str(path)).hardware
    assert hardware.chip in CHIPS and hardware.devices >= 1, path.name


def test_plan_json_has_each_steps_memory_and_fit(capsys, monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "")
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  cli.main(["plan", "--config", str(REPO / "tests" / "train" / "tiny_config.py"), "--json"])
  out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert out["chip"] == "CPU" and out["devices"] == 1 and out["hbm_bytes_per_device"] > 2**30
  assert [(s["stage"], s["step"], s["fits"]) for s in out["steps"]] == [("pretrain", "train", True),
                                                                         ("pretrain", "eval", True)]
  train, evaluation = (s["bytes_per_device"] for s in out["steps"])
  assert 0 < evaluation < train
  attention = out["attention"]
  assert (attention["rows_per_device"], attention["seq_len"], attention["chip_runs"]) == (8, 64, "blocked")
  assert set(attention["layer_bytes_per_device"]) == {"blocked", "splash"}


@pytest.mark.parametrize("mesh, shape", [((1, 8, 1), (2, 4, 2)), ((2, 2, 2), (4, 2, 1)), ((1, 2, 4), (8, 1, 1))],
                         ids=["fsdp", "tensor-2", "kv-heads-repeated"])
def test_attention_is_planned_on_each_devices_rows_and_heads(mesh, shape):
  """16 rows over data·fsdp, 4 query and 2 key/value heads over tensor (a kv head repeated when 4 split it)."""
  config = _config(mesh)
  assert attention_memory.per_device_shape(config, make_mesh(mesh)) == shape


def test_a_fused_kernels_attention_memory_grows_linearly_in_length_and_the_scores_quadratically():
  sizes = {t: {name: attention_memory.layer_bytes(name, 2, t, 4, 2, 16, np.float32) for name in ("xla", "splash")}
           for t in (512, 1024)}
  assert sizes[1024]["xla"] > 3.5 * sizes[512]["xla"]  # [b, n, t, t] scores
  assert sizes[1024]["splash"] < 2.5 * sizes[512]["splash"]  # q, k, v, out, their gradients, row statistics
  assert sizes[1024]["splash"] < sizes[1024]["xla"] / 4


@pytest.mark.parametrize("chip, runs", [("v5p", "splash"), ("h100", "cudnn"), ("cpu", "blocked")])
def test_the_plan_names_the_attention_each_chip_runs(chip, runs):
  memory = attention_memory.attention_memory(_config(**{"train.seq_len": 128}), make_mesh((1, 8, 1)), CHIPS[chip])
  assert memory.chip_runs == runs and set(memory.layer_bytes) == {"blocked", "splash"}
  text = "\n".join(attention_memory.report_lines(memory, CHIPS[chip], hardware.gib))
  assert ("stands in for cudnn" in text) == (runs == "cudnn")


@pytest.mark.slow  # ~33 s: nine compiles
def test_a_chain_config_plans_every_training_stage_and_the_rollouts(capsys, monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "")
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  cli.main(["plan", "--config", str(REPO / "tests" / "chain" / "tiny_chain.py"), "--json"])
  steps = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"]
  assert [(s["stage"], s["step"]) for s in steps] == [
      ("pretrain", "train"), ("pretrain", "eval"), ("sft", "train"), ("sft", "eval"), ("rm", "train"),
      ("rm", "eval"), ("rl", "train"), ("rl", "score"), ("rl", "rollout")]
  assert all(s["fits"] and s["bytes_per_device"] > 0 for s in steps)
  rl_config = stage_config(load_config(str(REPO / "tests" / "chain" / "tiny_chain.py")), "rl")
  assert compiled.rollout_bytes(rl_config, jax.devices()[0]) == steps[-1]["bytes_per_device"]
  wider = compiled.rollout_bytes(changes.variant(rl_config, **{"rollout.batch": 64}), jax.devices()[0])
  assert wider > 2 * steps[-1]["bytes_per_device"]  # 64 rows of rollouts against the tiny chain's 16


def test_rl_scores_in_chunks_of_its_own_size_not_the_train_batch():
  """RL's scoring pass runs rl.score_batch rows at a time (default: the train micro-batch), and the plan
  compiles that chunk: halving it shrinks the planned scoring memory."""
  from lmjax.config import ConfigError
  from lmjax.rl.settings import check_rl_config, score_batch
  config = stage_config(load_config(str(REPO / "tests" / "chain" / "tiny_chain.py")), "rl")
  config.train.grad_accum_steps = 2
  assert score_batch(config) == config.train.batch_size // 2
  devices = jax.devices()[:1]
  micro = compiled.score_step_bytes(config, devices)
  halved = changes.variant(config, **{"rl.score_batch": score_batch(config) // 2})
  assert compiled.score_step_bytes(halved, devices) < micro
  config.rl.score_batch = 3
  with pytest.raises(ConfigError, match="config.rl.score_batch=3"):
    check_rl_config(config)


def test_plan_of_a_config_without_a_model_says_so():
  with pytest.raises(SystemExit, match="trains no model"):
    cli.main(["plan", "--config", str(REPO / "configs" / "clean.py")])


def test_a_lora_plan_holds_the_frozen_base_and_optimizer_state_for_the_adapters_only():
  full = compiled.measure_memory(_config(), jax.devices())
  lora = compiled.measure_memory(_config(**{"model.lora.rank": 4}), jax.devices())
  assert lora.frozen == full.params  # the base, sharded as a full run's parameters
  assert lora.params < full.params / 10 and lora.opt_state < full.opt_state / 10
  assert lora.total < full.total
  text = output.lora_comparison(_config(**{"model.lora.rank": 4}), lora, full)
  assert "LoRA rank 4 on q,k,v,o against full fine-tuning" in text and "optimizer state" in text


@pytest.mark.slow  # ~7 min on 2 loaded cores: compiles the 8B step twice (LoRA and full) and its FLOPs variants
def test_llama3_8b_lora_sft_plans_beside_full_fine_tuning():
  done = subprocess.run([sys.executable, "-m", "lmjax.cli", "plan", "--config", str(REPO / "configs" / "llama3_8b.py"),
                         "--config.runtime.compilation_cache_dir=", "--config.model.lora.rank=16"],
                        capture_output=True, text=True, timeout=1800, cwd=REPO)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "LoRA rank 16 on q,k,v,o against full fine-tuning, per device:" in done.stdout, done.stdout
  total = next(line.split() for line in done.stdout.splitlines() if line.startswith("  total (compiled)  "))
  lora_gib, full_gib = float(total[2]), float(total[4])
  assert lora_gib < full_gib
  print(done.stdout)


@pytest.mark.slow  # ~20 s: six compiles
def test_the_dpo_route_plans_the_dpo_steps_in_place_of_the_reward_model_and_rl(capsys, monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "")
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  cli.main(["plan", "--config", str(REPO / "tests" / "chain" / "tiny_chain.py"), "--json",
            "--config.chain.preference=dpo"])
  steps = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"]
  assert [(s["stage"], s["step"]) for s in steps] == [
      ("pretrain", "train"), ("pretrain", "eval"), ("sft", "train"), ("sft", "eval"), ("dpo", "train"),
      ("dpo", "eval")]
  assert all(s["fits"] and s["bytes_per_device"] > 0 for s in steps)
