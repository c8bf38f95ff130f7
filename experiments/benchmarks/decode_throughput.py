"""python experiments/benchmarks/decode_throughput.py [--new-tokens 128] [--prompt-len 16]

Greedy decode throughput (new tokens/s) of lmjax's KV-cache engine at batch 1 and 16 on the benchmark
config (d=256, 4 layers, 4 heads, 2 KV heads, MLP 768, vocab 8192, float32), next to (a) the same code
recomputing the whole prefix every step and (b) HuggingFace `transformers` LlamaForCausalLM generating on
PyTorch CPU with the same architecture and the same (random) weights, all timed in this run. Also the
batch-1 memory-bandwidth bound: parameter bytes read per decode step over copy bandwidth measured here.
Needs `pip install -e '.[bench]'` (torch) and `pip install transformers`; nothing is downloaded.

Every method decodes exactly N new tokens per row (no early stop) from the same random prompts; times are
the median of a few calls after a warm-up call (the XLA compile is reported separately) and include the
prefill. The recompute reference is slow (N steps over an N-sized buffer), so it is timed once without a
warm-up and its XLA compile time (from jax.monitoring) is subtracted. Greedy tokens of the KV-cache engine
must equal the recompute reference (asserted); agreement with transformers on the copied weights (logits and
greedy tokens) is reported, not asserted. The process uses the allocator setting of the `lmjax` CLI
(`lmjax/allocator.py`), for every method alike.
"""
import argparse
import json
import os
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from configs import base
from lmjax.allocator import keep_freed_memory
from lmjax.convert import to_hf
from lmjax.infer.engine import generate
from lmjax.infer.sampler import SamplingParams, generate_recompute, knobs_of, row_keys, sample_rows
from lmjax.infer.slots import BUCKET
from lmjax.model.transformer import ModelConfig, Transformer

SHAPE = dict(vocab_size=8192, embed_dim=256, num_layers=4, num_heads=4, num_kv_heads=2, mlp_dim=768)
BATCHES = (1, 16)


def machine() -> str:
  model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
  return f"{model}, {os.cpu_count()} cores, jax {jax.__version__}"


def copy_bandwidth(megabytes: int = 512, repeats: int = 5) -> float:
  """Bytes/s of a numpy copy (bytes read + written), best of `repeats`: DRAM unless the array fits a cache."""
  src = np.ones(megabytes * 2**20 // 4, np.float32)
  dst = np.empty_like(src)
  best = float("inf")
  for _ in range(repeats + 1):
    start = time.perf_counter()
    np.copyto(dst, src)
    best = min(best, time.perf_counter() - start)
  return 2 * src.nbytes / best


def decode_param_bytes(cfg: ModelConfig) -> int:
  """Parameter bytes one decode step reads: every matrix and norm, but one row of the (gathered) embedding."""
  d, n, k, f, v = cfg.embed_dim, cfg.num_heads, cfg.num_kv_heads, cfg.mlp_dim, cfg.vocab_size
  h = d // n
  per_block = 2 * d + d * n * h + 2 * d * k * h + n * h * d + 3 * d * f
  count = d + cfg.num_layers * per_block + d + (0 if cfg.tie_embeddings else d * v)
  return count * cfg.param_dtype.itemsize


def hf_model(config, params, max_positions: int):
  """transformers' LlamaForCausalLM holding lmjax's weights, through `lmjax convert`'s own export."""
  from transformers import LlamaForCausalLM

  config = config.copy_and_resolve_references()
  config.train.seq_len = max_positions  # written as max_position_embeddings
  with tempfile.TemporaryDirectory() as out:
    return LlamaForCausalLM.from_pretrained(to_hf(config, params, out)).eval()


def hf_generate(model, prompts: np.ndarray, new_tokens: int) -> np.ndarray:
  import torch

  with torch.inference_mode():
    ids = torch.from_numpy(prompts.astype(np.int64))
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=new_tokens,
                         min_new_tokens=new_tokens, use_cache=True, pad_token_id=0)
  return out[:, prompts.shape[1]:].numpy()


class CompileClock:
  """Seconds XLA has spent compiling in this process (a jax.monitoring listener adds them up)."""

  def __init__(self):
    self.seconds = 0.0
    jax.monitoring.register_event_duration_secs_listener(self._record)

  def _record(self, event: str, seconds: float, **_):
    if event == "/jax/core/compile/backend_compile_duration":
      self.seconds += seconds


def timed(fn, repeats: int, clock: CompileClock, warmup: bool = True) -> dict:
  """Median seconds of `repeats` calls after a warm-up call, the XLA compile time, and the last output.

  Without a warm-up the first timed call pays the compile, which is subtracted from it.
  """
  compiled_before, times = clock.seconds, []
  out = fn() if warmup else None
  for _ in range(repeats):
    start = time.perf_counter()
    out = fn()
    times.append(time.perf_counter() - start)
  compile_s = clock.seconds - compiled_before
  if not warmup:
    times[0] -= compile_s
  return {"seconds": statistics.median(times), "all_s": times, "compile_s": compile_s, "out": np.asarray(out)}


def sampler_ms(batch: int, vocab: int, repeats: int = 20) -> tuple[float, float]:
  """Milliseconds of the engine's per-row draw (`sample_rows`, keys included) at temperature 0 and of a bare
  argmax, on [b, v] logits."""
  logits_bv = jax.random.normal(jax.random.key(0), (batch, vocab))
  rows = np.arange(batch, dtype=np.uint32)
  sample = jax.jit(lambda x, seeds, positions, knobs: sample_rows(x, row_keys(seeds, positions), knobs))
  argmax = jax.jit(lambda x: jnp.argmax(x, axis=-1))
  result = []
  for call in (lambda: sample(logits_bv, rows, rows.astype(np.int32), knobs_of(SamplingParams())),
               lambda: argmax(logits_bv)):
    jax.block_until_ready(call())
    times = []
    for _ in range(repeats):
      start = time.perf_counter()
      jax.block_until_ready(call())
      times.append(time.perf_counter() - start)
    result.append(1e3 * statistics.median(times))
  return result[0], result[1]


def logits_agreement(graphdef, params, model, prompt: np.ndarray) -> float:
  """Max |lmjax − transformers| over the logits of one prompt (full forward, same weights)."""
  import torch

  tokens_bt = prompt[None].astype(np.int32)
  positions_bt = np.arange(tokens_bt.shape[1], dtype=np.int32)[None]
  ours = nnx.merge(graphdef, params)(jnp.asarray(tokens_bt), positions_bt, np.ones_like(tokens_bt))
  with torch.inference_mode():
    theirs = model(torch.from_numpy(tokens_bt.astype(np.int64))).logits.numpy()
  return float(np.max(np.abs(np.asarray(ours) - theirs)))


def time_batch(batch: int, graphdef, params, model, args, clock: CompileClock, rng) -> dict:
  """Per method, its timing entry at this batch size; asserts KV-cache tokens equal the recompute's."""
  n = args.new_tokens
  prompts = rng.integers(3, SHAPE["vocab_size"], (batch, args.prompt_len), dtype=np.int32)
  as_lists, sampling = prompts.tolist(), SamplingParams(max_new_tokens=n, temperature=0.0, stop_ids=())
  calls = {"lmjax kv-cache": (lambda: generate(graphdef, params, as_lists, sampling), args.repeats, True),
           "lmjax recompute": (lambda: generate_recompute(graphdef, params, as_lists, sampling),
                               args.recompute_repeats, False),
           "transformers": (lambda: hf_generate(model, prompts, n), args.repeats, True)}
  runs = {}
  for name, (fn, repeats, warmup) in calls.items():
    runs[name] = timed(fn, repeats, clock, warmup)
    if runs[name]["out"].shape != (batch, n):
      raise AssertionError(f"{name} at batch {batch} made {runs[name]['out'].shape} tokens, not {(batch, n)}")
    print(f"  {name} at batch {batch}: {runs[name]['seconds']:.2f} s (load {os.getloadavg()[0]:.2f})",
          flush=True)
  kv, recompute, hf = (runs[k]["out"] for k in calls)
  if not np.array_equal(kv, recompute):
    raise AssertionError(f"batch {batch}: KV-cache greedy tokens differ from the recompute reference at "
                         f"{int(np.sum(kv != recompute))} of {kv.size} places")
  entries = {"hf_agree_prefix_mean": float(np.cumprod(kv == hf, axis=1).sum(axis=1).mean()),
             "hf_agree_all": bool(np.array_equal(kv, hf))}
  for name, r in runs.items():
    entries[name.replace(" ", "_")] = {
        "tokens_per_s": batch * n / r["seconds"], "ms_per_step": 1e3 * r["seconds"] / n, "all_s": r["all_s"],
        "vs_transformers": runs["transformers"]["seconds"] / r["seconds"],
        "vs_recompute": runs["lmjax recompute"]["seconds"] / r["seconds"],
        **({"compile_s": r["compile_s"]} if name.startswith("lmjax") else {})}
  entries["prompt"] = prompts[0]
  return entries


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--new-tokens", type=int, default=128)
  parser.add_argument("--prompt-len", type=int, default=16)
  parser.add_argument("--repeats", type=int, default=3, help="timed calls per method after the warm-up")
  parser.add_argument("--recompute-repeats", type=int, default=1, help="timed recompute calls (no warm-up)")
  parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch intra-op threads")
  args = parser.parse_args()
  import torch
  import transformers

  torch.set_num_threads(args.threads)
  clock = CompileClock()
  results = {"machine": machine(), "torch": torch.__version__, "transformers": transformers.__version__,
             "jax": jax.__version__, "torch_threads": args.threads, "new_tokens": args.new_tokens,
             "prompt_len": args.prompt_len, "load_start": os.getloadavg()[0]}
  print(f"machine: {machine()}, torch {torch.__version__} ({args.threads} threads), transformers "
        f"{transformers.__version__}; load average {results['load_start']:.2f} at start")
  bandwidth, cache_bandwidth = copy_bandwidth(512), copy_bandwidth(8, repeats=20)
  keep_freed_memory()  # after the copies: numpy's fresh mappings get huge pages, a reused heap block may not
  results.update(bandwidth_bytes_per_s=bandwidth, cache_bandwidth_bytes_per_s=cache_bandwidth)
  print(f"copy bandwidth (read + write): {bandwidth / 1e9:.1f} GB/s at 512 MB, "
        f"{cache_bandwidth / 1e9:.1f} GB/s at 8 MB (cache-resident)")

  config = base.get_config()
  config.model.update(SHAPE)
  cfg = ModelConfig.from_config(config.model)
  graphdef, params = nnx.split(Transformer(cfg, rngs=nnx.Rngs(0)))
  n = args.new_tokens
  model = hf_model(config, params, max_positions=args.prompt_len + n + BUCKET)
  rng = np.random.default_rng(0)
  prompt = None
  for batch in BATCHES:
    entries = time_batch(batch, graphdef, params, model, args, clock, rng)
    prompt = entries.pop("prompt")
    results.update({f"batch{batch}_{k}": v for k, v in entries.items()})

  print(f"\ngreedy decode, {n} new tokens per row after {args.prompt_len}-token random prompts, prefill "
        f"included (median of {args.repeats} after a warm-up; recompute: {args.recompute_repeats} call minus "
        f"its compile)")
  print(f"{'method':<16} {'batch':>5} {'tokens/s':>10} {'ms/step':>8} {'vs HF':>7} {'vs recomp':>9} "
        f"{'compile s':>9}")
  for batch in BATCHES:
    for name in ("lmjax_kv-cache", "lmjax_recompute", "transformers"):
      e = results[f"batch{batch}_{name}"]
      compile_s = f"{e['compile_s']:9.1f}" if "compile_s" in e else f"{'-':>9}"
      print(f"{name.replace('_', ' '):<16} {batch:>5} {e['tokens_per_s']:>10,.0f} {e['ms_per_step']:>8.2f} "
            f"{e['vs_transformers']:>6.2f}x {e['vs_recompute']:>8.1f}x {compile_s}")

  print("where the KV-cache step goes: the greedy `sample_rows` against a bare argmax, and the whole step")
  for batch in BATCHES:
    sample, argmax = sampler_ms(batch, cfg.vocab_size)
    results[f"batch{batch}_sample_rows_ms"], results[f"batch{batch}_argmax_ms"] = sample, argmax
    print(f"  batch {batch:>2}: sample_rows at temperature 0 alone {sample:.2f} ms (a bare argmax "
          f"{argmax:.2f} ms) of the {results[f'batch{batch}_lmjax_kv-cache']['ms_per_step']:.2f} ms step")

  param_bytes = decode_param_bytes(cfg)
  achieved = results["batch1_lmjax_kv-cache"]["tokens_per_s"]
  bound, cache_bound = bandwidth / param_bytes, cache_bandwidth / param_bytes
  results.update(decode_param_bytes=param_bytes, bound_tokens_per_s=bound,
                 cache_bound_tokens_per_s=cache_bound, bound_fraction=achieved / bound,
                 cache_bound_fraction=achieved / cache_bound)
  print(f"\nbatch-1 bound: a decode step reads {param_bytes / 2**20:.1f} MiB of float32 parameters "
        f"(all matrices and norms; one {cfg.embed_dim}-float row of the gathered embedding table)")
  print(f"  at {bandwidth / 1e9:.1f} GB/s (512 MB copy): {bound:,.0f} tokens/s; lmjax reaches "
        f"{achieved / bound:.0%}")
  print(f"  at {cache_bandwidth / 1e9:.1f} GB/s (8 MB copy; the parameters fit a 32 MB L3): "
        f"{cache_bound:,.0f} tokens/s; lmjax reaches {achieved / cache_bound:.0%}")

  max_diff = logits_agreement(graphdef, params, model, prompt)
  results["logits_max_abs_diff"] = max_diff
  agree = ", ".join(f"batch {b}: {results[f'batch{b}_hf_agree_prefix_mean']:.1f}" for b in BATCHES)
  print(f"\nsame weights: max |logit difference| lmjax vs transformers {max_diff:.1e}; greedy tokens agree "
        f"for {agree} of {n} tokens per row on average before the first difference")
  results["load_end"] = os.getloadavg()[0]
  print(f"load average {results['load_end']:.2f} at end on {os.cpu_count()} cores (other processes slow "
        f"every method)")
  print(json.dumps(results))


if __name__ == "__main__":
  main()
