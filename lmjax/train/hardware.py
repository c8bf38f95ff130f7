"""Accelerators' memory and peak matmul throughput: for model-FLOPs utilisation (MFU) and for `lmjax plan`."""
import dataclasses
import time

import jax
import jax.numpy as jnp

GiB = 2**30


@dataclasses.dataclass(frozen=True)
class Chip:
  name: str
  hbm_bytes: int  # high-bandwidth memory per chip
  peak_flops: float  # dense bf16 matmul FLOP/s per chip


# Per chip, from the vendors' spec pages: cloud.google.com/tpu/docs/{v4,v5e,v5p,v6e} (HBM per chip and bf16
# peak; v4 32 GiB / 275 TF, v5e 16 GiB / 197 TF, v5p 95 GiB / 459 TF, v6e 32 GiB / 918 TF) and NVIDIA's H100
# SXM datasheet (80 GB HBM3, 989 TFLOP/s dense bf16 — the 1,979 figure assumes 2:4 sparsity).
CHIPS = {
    "v4": Chip("TPU v4", 32 * GiB, 275e12),
    "v5e": Chip("TPU v5e", 16 * GiB, 197e12),
    "v5p": Chip("TPU v5p", 95 * GiB, 459e12),
    "v6e": Chip("TPU v6e", 32 * GiB, 918e12),
    "h100": Chip("NVIDIA H100", 80 * GiB, 989e12),
}

# Dense bf16 peak FLOP/s by the device_kind JAX reports (TPU v5e and v6e report themselves as "lite").
PEAK_FLOPS = {"TPU v4": 275e12, "TPU v5 lite": 197e12, "TPU v5e": 197e12, "TPU v5p": 459e12,
              "TPU v6 lite": 918e12, "TPU v6e": 918e12, "NVIDIA H100": 989e12, "NVIDIA A100": 312e12}


def measure_matmul_flops(size: int = 2048, dtype=jnp.float32, repeats: int = 3) -> float:
  """FLOP/s of a jitted size³ matmul on the default device (best of `repeats`, after a warm-up)."""
  a = jnp.ones((size, size), dtype)
  matmul = jax.jit(lambda x: x @ x)
  matmul(a).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * size**3 / best


def peak_flops_per_device() -> float:
  """The spec-sheet peak for known accelerators; measured float32 matmul FLOP/s on anything else (CPU)."""
  kind = jax.devices()[0].device_kind
  for name, flops in PEAK_FLOPS.items():
    if kind.startswith(name):
      return flops
  return measure_matmul_flops()
