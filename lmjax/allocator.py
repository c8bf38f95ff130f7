"""Keep the process's freed memory for reuse instead of handing it back to the kernel (glibc only).

XLA:CPU allocates each executable's temporary buffer afresh on every call (~400 MB for the benchmark's
train step). Allocated from a worker thread, glibc serves a block that large with a fresh `mmap` and
unmaps it on free, so every step faults in ~100k new pages that the kernel zeroes first: a fifth of the
step's CPU time went to the kernel (train step 640 → 510 ms with this; `experiments/benchmarks/
train_throughput.py`). One arena, no mmap for large blocks and no trimming make glibc reuse the block.
The price: memory freed by the process stays mapped (its peak, not its current use, is its footprint),
and large blocks come from the reused heap rather than fresh mappings that could get huge pages.
"""
import ctypes
import platform

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def keep_freed_memory() -> bool:
  """Configures glibc's malloc to reuse freed blocks; False where that does not apply (not glibc).

  Call it before JAX starts computing: threads that have already allocated keep the arena they use.
  """
  if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
    return False
  libc = ctypes.CDLL(None)
  settings = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))
  return all(libc.mallopt(parameter, value) == 1 for parameter, value in settings)
