"""python experiments/benchmarks/train_throughput.py [--steps 20] [--threads 2] [--no-torch] [--glibc-malloc]

Training throughput of lmjax's train step on a fixed small config (d=256, 4 layers, seq 256, batch 8,
vocab 8192), as tokens/s and model-FLOPs utilisation against the float32 matmul peak measured in the
same run, next to the same architecture in plain PyTorch (eager, float32, SDPA) timed in the same run.
float32 is compared with float32 (PyTorch bfloat16 is emulated and very slow on CPUs without it);
JAX bfloat16 compute is reported separately. Needs `pip install -e '.[bench]'` for the PyTorch side.
Both run in this one process with the allocator setting the `lmjax` CLI uses (`lmjax/allocator.py`);
`--glibc-malloc` keeps glibc's defaults instead, for both.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from configs import base  # noqa: E402
from lmjax import losses  # noqa: E402
from lmjax.allocator import keep_freed_memory  # noqa: E402
from lmjax.model import flops_per_token  # noqa: E402
from lmjax.train.hardware import measure_matmul_flops  # noqa: E402
from lmjax.train.setup import build_train_setup  # noqa: E402
from lmjax.train.step import make_train_step  # noqa: E402

SHAPE = dict(vocab_size=8192, embed_dim=256, num_layers=4, num_heads=4, num_kv_heads=2, mlp_dim=768)
BATCH, SEQ = 8, 256


def machine() -> str:
  model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
  return f"{model}, {os.cpu_count()} cores, {platform.system()}, jax {jax.__version__}"


def bench_config(dtype: str):
  config = base.get_config()
  config.model.update(SHAPE)
  config.model.dtype = dtype
  config.train.batch_size, config.train.seq_len, config.train.steps = BATCH, SEQ, 1000
  return config


def random_batch(rng: np.random.Generator, setup, batch: int = BATCH, seq: int = SEQ,
                 vocab: int = SHAPE["vocab_size"]) -> dict:
  """A next-token batch of random ids [batch, seq] on the setup's batch sharding."""
  ids = rng.integers(0, vocab, (batch, seq + 1), dtype=np.int32)
  rows = {"tokens": ids[:, :-1], "targets": ids[:, 1:], "positions": np.tile(np.arange(seq, dtype=np.int32), (batch, 1)),
          "segment_ids": np.ones((batch, seq), np.int32), "loss_mask": np.ones((batch, seq), np.float32)}
  return {k: jax.device_put(v, setup.batch_sharding) for k, v in rows.items()}


def jax_trainer(dtype: str):
  """(step, facts) of the real train step (next_token loss, AdamW, clipping); step(i) runs batch i % 4."""
  setup = build_train_setup(bench_config(dtype))
  step = make_train_step(setup.graphdef, losses.next_token, setup.optimizer, setup.shardings,
                         batch_sharding=setup.batch_sharding, lr_schedule=setup.schedule)
  rng, key = np.random.default_rng(0), jax.random.key(0)
  batches = [random_batch(rng, setup) for _ in range(4)]
  state = setup.init()

  def train_step(i: int) -> float:
    nonlocal state
    state, metrics = step(state, batches[i % len(batches)], key)
    return float(metrics["loss"])  # waits for the step

  return train_step, {"flops_per_token": flops_per_token(setup.model_config, SEQ),
                      "param_count": setup.param_count}


def torch_trainer(threads: int):
  """(step, facts) of the PyTorch reference, or None without torch."""
  try:
    from experiments.benchmarks.torch_reference import torch_trainer as make
  except ImportError as e:
    print(f"PyTorch reference skipped ({e}); pip install -e '.[bench]'")
    return None
  shape = dict(SHAPE, head_dim=SHAPE["embed_dim"] // SHAPE["num_heads"])
  return make(**shape, batch_size=BATCH, seq_len=SEQ, threads=threads)


def time_interleaved(trainers: dict, steps: int, warmup: int = 3) -> dict:
  """Median seconds per step of each trainer, their steps taken in turn (order alternating each round),
  so a change in the machine's speed during the run reaches every implementation alike."""
  for step, _ in trainers.values():
    for i in range(warmup):
      step(i)
  times = {name: [] for name in trainers}
  losses_seen = {}
  for round_index in range(steps):
    order = list(trainers) if round_index % 2 == 0 else list(reversed(trainers))
    for name in order:
      start = time.perf_counter()
      losses_seen[name] = trainers[name][0](warmup + round_index)
      times[name].append(time.perf_counter() - start)
  results = {}
  for name, (_, facts) in trainers.items():
    step_s = statistics.median(times[name])
    results[name] = {"tokens_per_s": BATCH * SEQ / step_s, "step_s": step_s, "final_loss": losses_seen[name],
                     **facts}
  return results


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch intra-op threads")
  parser.add_argument("--no-torch", action="store_true")
  parser.add_argument("--glibc-malloc", action="store_true", help="keep glibc's malloc defaults (both sides)")
  args = parser.parse_args()
  allocator = "glibc defaults" if args.glibc_malloc or not keep_freed_memory() else "freed memory kept"
  print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f} at start; malloc: {allocator}")
  peak = measure_matmul_flops(repeats=10)  # best of 10: a busy moment must not lower the peak
  print(f"peak float32 matmul (JAX, 2048^3): {peak / 1e9:.1f} GFLOP/s")
  trainers = {f"jax_{dtype}": jax_trainer(dtype) for dtype in ("float32", "bfloat16")}
  reference = None if args.no_torch else torch_trainer(args.threads)
  if reference:
    trainers["torch_float32"] = reference
  results = {"machine": machine(), "peak_flops": peak, "malloc": allocator,
             **time_interleaved(trainers, args.steps)}
  model_flops_per_token = results["jax_float32"]["flops_per_token"]
  for name in trainers:
    r = results[name]
    r["mfu"] = r["tokens_per_s"] * model_flops_per_token / peak
    extra = f"  (torch {r['torch_version']}, {r['threads']} threads)" if "torch_version" in r else ""
    print(f"{name.replace('_', ' '):<14} {r['tokens_per_s']:>8,.0f} tokens/s  {r['step_s'] * 1e3:7.1f} ms/step  "
          f"MFU {r['mfu']:.1%} (of the float32 peak)  params {r['param_count']:,}{extra}")
  if reference:
    ratio = results["jax_float32"]["tokens_per_s"] / results["torch_float32"]["tokens_per_s"]
    results["jax_over_torch_float32"] = ratio
    print(f"ratio jax/torch (float32): {ratio:.2f}x (steps interleaved, medians of {args.steps})")
  print(f"load average {os.getloadavg()[0]:.2f} at end (other processes distort the figures)")
  print(json.dumps(results))


if __name__ == "__main__":
  main()
