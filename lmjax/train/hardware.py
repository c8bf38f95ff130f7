"""Peak matmul throughput of the devices, for model-FLOPs utilisation (MFU)."""
import time

import jax
import jax.numpy as jnp

# Dense bf16 peak FLOP/s per chip, from the vendors' spec sheets.
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
