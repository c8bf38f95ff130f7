"""Accelerators' memory and peak matmul throughput: the denominator of model-FLOPs utilisation (MFU) and the
budget `lmjax plan` checks against."""
import dataclasses
import functools
import os
import time

import jax
import jax.numpy as jnp

GiB = 2**30


def gib(n: float) -> str:
  """Bytes as "12.34 GiB"."""
  return f"{n / GiB:.2f} GiB"


@dataclasses.dataclass(frozen=True)
class Chip:
  name: str
  hbm_bytes: int  # high-bandwidth memory per chip
  peak_flops: float  # dense bf16 matmul FLOP/s per chip
  device_kinds: tuple[str, ...] = ()  # how JAX's `device.device_kind` names it (matched as a prefix)

  @property
  def platform(self) -> str:
    """The JAX backend that drives the chip: tpu, gpu or cpu (what `backend` dispatches on)."""
    return "tpu" if self.name.startswith("TPU") else "gpu" if self.name.startswith("NVIDIA") else "cpu"


# Per chip, from the vendors' spec pages: cloud.google.com/tpu/docs/{v4,v5e,v5p,v6e} (HBM per chip and dense
# bf16 peak), NVIDIA's A100, H100/H200 SXM and HGX B200 datasheets (dense bf16: the doubled figures assume
# 2:4 sparsity). JAX names TPU v5e and v6e "lite" and TPU v5p plain "TPU v5".
CHIPS = {
    "v4": Chip("TPU v4", 32 * GiB, 275e12, ("TPU v4",)),
    "v5e": Chip("TPU v5e", 16 * GiB, 197e12, ("TPU v5 lite", "TPU v5e")),
    "v5p": Chip("TPU v5p", 95 * GiB, 459e12, ("TPU v5p", "TPU v5")),
    "v6e": Chip("TPU v6e", 32 * GiB, 918e12, ("TPU v6 lite", "TPU v6e")),
    "a100": Chip("NVIDIA A100", 80 * GiB, 312e12, ("NVIDIA A100",)),
    "h100": Chip("NVIDIA H100", 80 * GiB, 989e12, ("NVIDIA H100",)),
    "h200": Chip("NVIDIA H200", 141 * 10**9, 989e12, ("NVIDIA H200",)),
    "b200": Chip("NVIDIA B200", 180 * 10**9, 2250e12, ("NVIDIA B200",)),
    # This machine's CPU for `lmjax plan` of the CPU configs: its memory, and the float32 matmul rate
    # PITFALLS.md measured on 2 cores. Never a nominal MFU peak (no device kind: the CPU's is measured).
    "cpu": Chip("CPU", os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), 150e9),
}


def chip_of(device_kind: str) -> Chip | None:
  """The table's chip for a JAX device kind (longest matching prefix, so "TPU v5 lite" is not a v5p)."""
  matches = [(len(kind), chip) for chip in CHIPS.values() for kind in chip.device_kinds
             if device_kind.startswith(kind)]
  return max(matches, key=lambda m: m[0])[1] if matches else None


def measure_matmul_flops(size: int = 2048, dtype=jnp.float32, repeats: int = 10) -> float:
  """FLOP/s of a jitted size³ matmul on the default device: the best of `repeats` after a warm-up, since
  load on the machine only ever makes a run slower."""
  a = jnp.ones((size, size), dtype)
  matmul = jax.jit(lambda x: x @ x)
  matmul(a).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * size**3 / best


@functools.cache
def peak_flops_per_device() -> tuple[float, bool]:
  """(peak FLOP/s of one device, whether it is the chip's nominal figure): the spec sheet for a chip in the
  table, else (CPU, unknown accelerators) a measured float32 matmul, which is only a lower bound."""
  chip = chip_of(jax.devices()[0].device_kind)
  return (chip.peak_flops, True) if chip else (measure_matmul_flops(), False)
