"""MFU's two halves: each loss's model FLOPs match what XLA compiles for its train step, and the peak is a
chip's spec sheet or, measured, never below what the step itself reaches (so MFU is a fraction)."""
import jax
import pytest

from lmjax import losses
from lmjax.model import ModelConfig
from lmjax.train.plan.compiled import compile_step
from lmjax.train.hardware import CHIPS, chip_of
from lmjax.train.loop import model_flops_per_step
from lmjax.train.metrics import Progress
from tests.conftest import tiny_config


@pytest.mark.parametrize("loss_name", list(losses.LOSSES))
def test_model_flops_match_the_compiled_step_for_every_loss(loss_name):
  config = tiny_config()
  config.train.update(loss=loss_name, batch_size=4, seq_len=128)
  compiled = compile_step(config, jax.devices()[:1])[2]
  cost = compiled.cost_analysis()
  compiled_flops = float((cost[0] if isinstance(cost, list) else cost)["flops"])
  counted = model_flops_per_step(ModelConfig.from_config(config.model), loss_name, 4, 128)
  # The compiled step adds the optimizer and elementwise work, and skips the causal mask's upper blocks.
  assert 0.95 < compiled_flops / counted < 1.05, (loss_name, compiled_flops, counted)


def test_a_reward_model_step_counts_no_output_projection():
  cfg = ModelConfig.from_config(tiny_config().model)
  difference = model_flops_per_step(cfg, "next_token", 2, 8) - model_flops_per_step(cfg, "pairwise_bce", 2, 8)
  assert difference == 2 * 8 * 6 * cfg.vocab_size * cfg.embed_dim


@pytest.mark.parametrize("kind, name", [("TPU v5 lite", "TPU v5e"), ("TPU v5", "TPU v5p"), ("TPU v5p", "TPU v5p"),
                                        ("TPU v6 lite", "TPU v6e"), ("TPU v4", "TPU v4"),
                                        ("NVIDIA H100 80GB HBM3", "NVIDIA H100"), ("NVIDIA H200", "NVIDIA H200"),
                                        ("NVIDIA B200", "NVIDIA B200"), ("NVIDIA A100-SXM4-80GB", "NVIDIA A100")])
def test_device_kinds_find_their_chip(kind, name):
  assert chip_of(kind).name == name


def test_cpu_has_no_nominal_peak():
  assert chip_of("cpu") is None
  assert all(chip.peak_flops > 1e14 and chip.hbm_bytes > 1e10 for name, chip in CHIPS.items() if name != "cpu")


@pytest.fixture
def clock(monkeypatch):
  """The progress bar's clock, set by hand: now[0] seconds."""
  now = [0.0]
  monkeypatch.setattr("lmjax.train.metrics.time.perf_counter", lambda: now[0])
  return now


def test_a_measured_peak_rises_to_the_throughput_the_step_reaches(clock):
  now = clock
  progress = Progress(start=0, total=10, tokens_per_step=100, flops_per_step=1e9, peak_flops=1e9,
                      peak_is_nominal=False, enabled=False)
  now[0] = 2.0
  assert progress.update(4, loss=1.0)["mfu"] == 1.0  # 2 GFLOP/s against a 1 GFLOP/s measurement
  now[0] = 6.0
  slower = progress.update(8, loss=1.0)
  assert slower["mfu"] == pytest.approx(0.5) and slower["tokens_per_s"] == pytest.approx(100)


def test_a_nominal_peak_is_kept(clock):
  now = clock
  progress = Progress(start=0, total=10, tokens_per_step=100, flops_per_step=1e12, peak_flops=1e15,
                      peak_is_nominal=True, enabled=False)
  now[0] = 2.0
  assert progress.update(4, loss=1.0)["mfu"] == pytest.approx(2e-3) and progress.peak_flops == 1e15
