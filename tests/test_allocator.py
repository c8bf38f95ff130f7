"""keep_freed_memory: a large block freed and allocated again from a worker thread is reused, not re-faulted."""
import json
import platform
import subprocess
import sys

import pytest

CHILD = """
import json, resource, sys, threading
import numpy as np
from lmjax.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "keep" else False

def allocate_and_touch_three_times(faults):
  for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = np.ones(64 << 20, np.float32)  # 256 MiB, touched: as XLA:CPU's per-call temp buffer is
    del block
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

faults = []
worker = threading.Thread(target=allocate_and_touch_three_times, args=(faults,))  # not glibc's main arena
worker.start(); worker.join()
print(json.dumps({"applied": applied, "faults": faults}))
"""


def page_faults(mode: str) -> dict:
  done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, timeout=120)
  assert done.returncode == 0, done.stderr[-2000:]
  return json.loads(done.stdout.split("\n")[-2])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc malloc setting")
def test_freed_block_is_reused_instead_of_faulted_in_again():
  huge_pages = (256 << 20) // (2 << 20)  # the fewest faults a fresh 256 MiB can take (2 MiB pages)
  default, kept = page_faults("default"), page_faults("keep")
  assert not default["applied"] and kept["applied"]
  assert min(default["faults"]) >= huge_pages // 2  # glibc's default: a fresh mmap every time
  assert 10 * max(kept["faults"][1:]) < min(default["faults"][1:])
