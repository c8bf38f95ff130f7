"""python experiments/benchmarks/gpu_check.py [--tiny] [--json OUT] [--budget-s 300]

One pass over what a single H100/H200 must get right before a GPU run is booked, in at most ~5 minutes
with the compiles. It prints the machine and date once, then one line per check
(`gpu_check: <check>: <figures>`):

- `device`: the device kind, platform and count, its entry in lmjax/train/hardware.py's chip table, the peak
  FLOP/s that MFU divides by (nominal from the table, else a measured float32 matmul) and its memory.
- `attention <impl> <1b|8b>`: every model.attention implementation this backend runs (blocked and xla; cudnn
  on GPU) at llama3_1b's and llama3_8b's shapes (batch 1, their seq_len and heads, bfloat16, packed
  documents): the largest |difference| of the output and of dq, dk, dv from jax.nn.dot_product_attention
  (XLA) in float32 on the same inputs, the fwd+bwd time (ratio to xla's) and the compiled temporaries.
- `train llama3_1b`: the real train step on one device at the most rows (halved from a start) whose compiled
  memory fits 90% of the device's: tokens/s and MFU over timed steps after the compile, and the compile time.
- `eval llama3_1b`: the micro-batched eval step's compiled bytes for that one-device config, and whether they
  fit (the config as shipped plans for 16 chips and cannot).
- `decode scanned|unscanned`: greedy new tokens/s of the inference engine on llama_125m's shape (bfloat16,
  random weights) with model.scan_layers on and off, and their ratio.
- `rollout memory <config>`: the compiled memory (arguments + temporaries) of the generation program RL's
  rollouts run, at speedrun_cpu's and speedrun_pod's rollout.batch, RL seq_len and rollout.max_new_tokens:
  compiled from shapes, nothing allocated.

A check that raises prints `<check>: FAILED <reason>` and the others go on; a check due after --budget-s is
SKIPPED, and one still running 60 s after it ends the process with what was measured (checklist.py).
--json writes every check's figures as one object, rewritten after each check. The exit code is 0 only if
every check ran. `--tiny` runs the same plumbing at toy sizes (2 layers, 64 wide, t=128) for the CPU test
(tests/benchmarks/test_gpu_check.py); speed is measured here and never asserted in tests.
"""
import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from configs import llama3_1b, llama3_8b, llama_125m, speedrun_cpu, speedrun_pod  # noqa: E402
from experiments.benchmarks.checklist import Checklist  # noqa: E402
from lmjax.allocator import keep_freed_memory  # noqa: E402
from lmjax.backend import expected_platform  # noqa: E402
from lmjax.chain.stages import stage_config  # noqa: E402
from lmjax.infer import engine, sampler, slots  # noqa: E402
from lmjax.model import init_params, model_definition  # noqa: E402
from lmjax.model.layers import attention_mask, self_attend  # noqa: E402
from lmjax.train.plan.changes import variant  # noqa: E402
from lmjax.train.plan.compiled import compile_step, compiled_bytes, eval_step_bytes, rollout_memory  # noqa: E402
from lmjax.train.hardware import CHIPS, GiB, chip_of, peak_flops_per_device  # noqa: E402
from lmjax.train.loop import model_flops_per_step  # noqa: E402

MiB = 2**20
FIT_FRACTION = 0.9  # of the device's memory that the train step may plan to use


@dataclasses.dataclass(frozen=True)
class Sizes:
  """Every size the checks use: the GPU run's, or --tiny's toy ones for the CPU test."""
  tiny_model: dict | None  # model fields replacing every config's body (None: the configs' own)
  tiny_seq_len: int | None  # replaces train.seq_len of the train and attention checks
  tiny_head_dim: int | None  # replaces the attention shapes' head size
  train_rows: int  # rows of the first train-step candidate (halved until it fits)
  train_steps: int  # timed train steps after one warm-up step
  decode_batch: int  # rows of random prompts of slots.BUCKET tokens (the smallest prefill width)
  decode_new_tokens: int
  timed_calls: int  # timed calls of an attention or decode program after a warm-up call


FULL = Sizes(None, None, None, train_rows=8, train_steps=5, decode_batch=16, decode_new_tokens=256,
             timed_calls=5)
TINY = Sizes(dict(num_layers=2, embed_dim=64, num_heads=4, num_kv_heads=2, mlp_dim=128, vocab_size=1024),
             tiny_seq_len=128, tiny_head_dim=16, train_rows=4, train_steps=2, decode_batch=4,
             decode_new_tokens=16, timed_calls=2)


def machine() -> str:
  cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
  return (f"{cpu}, {os.cpu_count()} cores, {platform.system()}, Python {platform.python_version()}, "
          f"jax {jax.__version__}")


def shrunk(config, sizes: Sizes, *, seq_len: bool = False):
  """The config with --tiny's model body (and seq_len if asked); unchanged for the GPU run."""
  if sizes.tiny_model is None:
    return config
  fields = {f"model.{k}": v for k, v in sizes.tiny_model.items()}
  return variant(config, **fields, **({"train.seq_len": sizes.tiny_seq_len} if seq_len else {}))


def device_memory() -> tuple[int, str]:
  """(bytes one device may allocate, where the figure comes from): the allocator's limit if the device
  reports one (on GPU, XLA's preallocated share), else the chip table's HBM, else this machine's memory."""
  device = jax.devices()[0]
  stats = device.memory_stats() or {}
  if "bytes_limit" in stats:
    return int(stats["bytes_limit"]), "allocator limit"
  chip = chip_of(device.device_kind)
  return (chip.hbm_bytes, "chip table") if chip else (CHIPS["cpu"].hbm_bytes, "machine memory")


def size_text(n: float) -> str:
  return f"{n / GiB:,.2f} GiB" if n >= GiB else f"{n / MiB:,.1f} MiB"


def median_seconds(run, calls: int) -> float:
  """Median wall time of `calls` calls of run() after a warm-up call; run() must wait for its results."""
  run()
  times = []
  for _ in range(calls):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def packed_documents(t: int) -> tuple[np.ndarray, np.ndarray]:
  """(segment ids, positions) [t] of a row packing documents of t/2, t/4, t/8 and the rest: causal attention
  within each, positions restarting at every document start."""
  lengths = [t // 2, t // 4, t // 8]
  lengths.append(t - sum(lengths))
  segments = np.concatenate([np.full(n, i + 1, np.int32) for i, n in enumerate(lengths)])
  positions = np.concatenate([np.arange(n, dtype=np.int32) for n in lengths])
  return segments, positions


# --- device -----------------------------------------------------------------------------------------------

def check_device(sizes: Sizes, context: dict) -> tuple[str, dict]:
  """What JAX runs on, and the peak and memory every later figure is a fraction of."""
  device = jax.devices()[0]
  chip = chip_of(device.device_kind)
  peak, nominal = peak_flops_per_device()
  memory, source = device_memory()
  figures = {"device_kind": device.device_kind, "platform": device.platform, "device_count": jax.device_count(),
             "chip": chip.name if chip else "none", "peak_flops": peak, "peak_is_nominal": nominal,
             "memory_bytes": memory, "memory_source": source}
  line = (f"{device.device_kind} ({device.platform}) x{jax.device_count()}; chip table: "
          f"{chip.name if chip else 'none'}; MFU peak {peak / 1e12:.3g} TFLOP/s "
          f"({'nominal bf16' if nominal else 'measured float32 matmul'}); memory {size_text(memory)} ({source})")
  return line, figures


# --- attention --------------------------------------------------------------------------------------------

def attention_shape(config, sizes: Sizes) -> tuple[int, int, int, int]:
  """(t, query heads, KV heads, head size) of a config's attention (--tiny: its heads at a toy t and h)."""
  m = config.model
  t, h = config.train.seq_len, m.embed_dim // m.num_heads
  return sizes.tiny_seq_len or t, m.num_heads, m.num_kv_heads, sizes.tiny_head_dim or h


def attention_inputs(shape) -> tuple:
  """bfloat16 q [1, t, n, h], k and v [1, t, k, h], the packed documents' segment ids [1, t], a cotangent like q."""
  t, n, k, h = shape
  keys = jax.random.split(jax.random.key(0), 4)
  normal = lambda key, heads: jax.random.normal(key, (1, t, heads, h), jnp.bfloat16)
  segments, _ = packed_documents(t)
  return (normal(keys[0], n), normal(keys[1], k), normal(keys[2], k), jnp.asarray(segments)[None],
          normal(keys[3], n))


def fwd_bwd(implementation: str):
  """(q, k, v, segment_ids, cotangent) -> (output, (dq, dk, dv)) of model.attention's `implementation`, or of the
  reference (`reference`: XLA's dot_product_attention, in the inputs' dtype)."""
  def attention(q, k, v, segment_ids):
    if implementation == "reference":
      return jax.nn.dot_product_attention(q, k, v, mask=attention_mask(segment_ids)[:, None], implementation="xla")
    return self_attend(q, k, v, segment_ids, implementation)

  def run(q, k, v, segment_ids, cotangent):
    out, vjp = jax.vjp(lambda q, k, v: attention(q, k, v, segment_ids), q, k, v)
    return out, vjp(cotangent.astype(out.dtype))
  return run


def float32_reference(shape) -> tuple:
  """The reference's output and gradients in float32 on the bfloat16 inputs (host arrays)."""
  q, k, v, segment_ids, cotangent = attention_inputs(shape)
  f32 = lambda x: x.astype(jnp.float32)
  return jax.device_get(jax.jit(fwd_bwd("reference"))(f32(q), f32(k), f32(v), segment_ids, f32(cotangent)))


def attention_implementations() -> list[str]:
  """The implementations this backend runs, xla first (the others' times are given as ratios to it)."""
  return ["xla", "blocked"] + (["cudnn"] if jax.default_backend() == "gpu" else [])


def check_attention(implementation: str, shape_name: str, config, sizes: Sizes, context: dict):
  """One implementation at one config's shape: its error against the float32 reference (computed once per
  shape), its fwd+bwd time against xla's (the first one timed) and its compiled temporaries."""
  shape = attention_shape(config, sizes)
  references = context.setdefault("attention_references", {})
  if shape_name not in references:
    references[shape_name] = float32_reference(shape)
  want_out, want_grads = references[shape_name]
  inputs = attention_inputs(shape)
  compiled = jax.jit(fwd_bwd(implementation)).lower(*inputs).compile()
  temporaries = compiled.memory_analysis().temp_size_in_bytes
  seconds = median_seconds(lambda: jax.block_until_ready(compiled(*inputs)), sizes.timed_calls)
  out, grads = jax.device_get(compiled(*inputs))
  names, got, want = ("out", "dq", "dk", "dv"), (out, *grads), (want_out, *want_grads)
  diffs = {n: float(np.max(np.abs(np.asarray(g, np.float32) - w))) for n, g, w in zip(names, got, want)}
  scales = {n: float(np.max(np.abs(w))) for n, w in zip(names, want)}
  xla_ms = context.setdefault("attention_xla_ms", {}).setdefault(shape_name, seconds * 1e3)
  t, n, k, h = shape
  figures = {"shape": {"t": t, "heads": n, "kv_heads": k, "head_dim": h}, "max_abs_diff": diffs,
             "reference_max_abs": scales, "fwd_bwd_ms": seconds * 1e3, "ratio_to_xla": seconds * 1e3 / xla_ms,
             "temp_bytes": temporaries}
  line = (f"t={t} heads {n}/{k} head_dim {h} bf16, packed docs: max|diff| vs float32 xla (of max|ref|) "
          + " ".join(f"{name} {diffs[name]:.1e} ({scales[name]:.2g})" for name in names)
          + f"; fwd+bwd {seconds * 1e3:.2f} ms ({seconds * 1e3 / xla_ms:.2f}x xla); temporaries "
          f"{size_text(temporaries)}")
  return line, figures


# --- train and eval steps ---------------------------------------------------------------------------------

def one_device_config(sizes: Sizes, rows: int):
  """llama3_1b on one device (one host, so one data stream): a mesh of 1 and `rows` rows in one micro-batch
  (--tiny: the toy body)."""
  config = shrunk(llama3_1b.get_config(), sizes, seq_len=True)
  return variant(config, **{"hardware.devices": 1, "mesh.data": 1, "mesh.fsdp": 1, "mesh.tensor": 1,
                            "train.batch_size": rows, "train.grad_accum_steps": 1, "data.streams": 1})


def fitting_train_step(sizes: Sizes, budget_bytes: int):
  """(config, setup, abstract batch, compiled step, compile seconds, bytes) at the most rows, halving from
  sizes.train_rows, whose compiled step fits `budget_bytes`: each candidate compiled from shapes first."""
  rows = sizes.train_rows
  while True:
    config = one_device_config(sizes, rows)
    setup, batch, compiled, seconds = compile_step(config, jax.devices()[:1])
    needed = compiled_bytes(compiled.memory_analysis())
    if needed <= budget_bytes:
      return config, setup, batch, compiled, seconds, needed
    if rows == 1:
      raise MemoryError(f"one row needs {needed / GiB:.1f} GiB, over the {budget_bytes / GiB:.1f} GiB budget")
    print(f"gpu_check:   {rows} rows need {needed / GiB:.1f} GiB of {budget_bytes / GiB:.1f}: halving", flush=True)
    rows //= 2


def random_batch(abstract: dict, vocab_size: int, sharding) -> dict:
  """Concrete arrays for an abstract next-token batch: random tokens, rows of packed documents, full mask."""
  rows, t = abstract["tokens"].shape
  rng = np.random.default_rng(0)
  segments, positions = packed_documents(t)
  values = {"tokens": rng.integers(0, vocab_size, (rows, t)), "targets": rng.integers(0, vocab_size, (rows, t)),
            "positions": np.tile(positions, (rows, 1)), "segment_ids": np.tile(segments, (rows, 1))}
  return {key: jax.device_put(values.get(key, np.ones(s.shape)).astype(s.dtype), sharding)
          for key, s in abstract.items()}


def check_train(sizes: Sizes, context: dict):
  """llama3_1b's real train step at the most rows that fit one device: tokens/s and MFU after a warm-up step
  (the fitted config is left in `context` for the eval check)."""
  memory, _ = device_memory()
  config, setup, abstract, compiled, compile_s, needed = fitting_train_step(sizes, int(FIT_FRACTION * memory))
  context["train_config"] = config
  t = config.train
  state, rng = setup.init(), jax.random.key(0)
  batch = random_batch(abstract, config.model.vocab_size, setup.batch_sharding)
  state, metrics = compiled(state, batch, rng)
  float(metrics["loss"])  # waits for the warm-up step
  start = time.perf_counter()
  for _ in range(sizes.train_steps):
    state, metrics = compiled(state, batch, rng)
  loss = float(metrics["loss"])
  step_s = (time.perf_counter() - start) / sizes.train_steps
  peak, nominal = peak_flops_per_device()
  mfu = model_flops_per_step(setup.model_config, t.loss, t.batch_size, t.seq_len) / step_s / peak
  tokens_per_s = t.batch_size * t.seq_len / step_s
  figures = {"rows": t.batch_size, "seq_len": t.seq_len, "compiled_bytes": needed,
             "budget_bytes": FIT_FRACTION * memory, "tokens_per_s": tokens_per_s, "step_ms": step_s * 1e3,
             "mfu": mfu, "peak_is_nominal": nominal, "compile_s": compile_s, "loss": loss}
  line = (f"{t.batch_size} rows x {t.seq_len} tokens in one micro-batch ({size_text(needed)} compiled, of "
          f"{FIT_FRACTION:.0%} x {size_text(memory)}): {tokens_per_s:,.0f} tokens/s, {step_s * 1e3:.1f} ms/step, "
          f"MFU {mfu:.1%} (of the {'nominal' if nominal else 'measured'} peak), compile {compile_s:.1f} s, "
          f"loss {loss:.2f}")
  return line, figures


def check_eval(sizes: Sizes, context: dict):
  """The micro-batched eval step's compiled bytes for the train check's one-device config, against memory."""
  config = context.get("train_config") or one_device_config(sizes, sizes.train_rows)
  memory, source = device_memory()
  start = time.perf_counter()
  needed = eval_step_bytes(config, jax.devices()[:1])
  fits = needed <= memory
  figures = {"rows": config.train.batch_size, "micro_batches": config.train.grad_accum_steps,
             "compiled_bytes": needed, "memory_bytes": memory, "fits": fits,
             "compile_s": time.perf_counter() - start}
  line = (f"{config.train.batch_size} rows x {config.train.seq_len} in {config.train.grad_accum_steps} "
          f"micro-batch(es): {size_text(needed)} compiled of {size_text(memory)} ({source}): "
          f"{'fits' if fits else 'DOES NOT FIT'} ({needed / memory:.0%})")
  return line, figures


# --- decode -----------------------------------------------------------------------------------------------

def check_decode(scan_layers: bool, sizes: Sizes, context: dict):
  """Greedy new tokens/s of the engine's `generate` (prefill included) on llama_125m's shape with random weights;
  the unscanned check also gives its ratio to the scanned one."""
  config = variant(shrunk(llama_125m.get_config(), sizes), **{"model.scan_layers": scan_layers})
  graphdef, _ = model_definition(config)
  params = init_params(config, seed=0)
  rng = np.random.default_rng(0)
  prompts = rng.integers(1, config.model.vocab_size, (sizes.decode_batch, slots.BUCKET)).tolist()
  sampling = sampler.SamplingParams(max_new_tokens=sizes.decode_new_tokens, temperature=0.0)
  start = time.perf_counter()
  engine.generate(graphdef, params, prompts, sampling)
  first_s = time.perf_counter() - start
  seconds = median_seconds(lambda: engine.generate(graphdef, params, prompts, sampling), sizes.timed_calls)
  tokens_per_s = sizes.decode_batch * sizes.decode_new_tokens / seconds
  scanned = context.setdefault("decode_tokens_per_s", {})
  scanned[scan_layers] = tokens_per_s
  m = config.model
  figures = {"layers": m.num_layers, "embed_dim": m.embed_dim, "dtype": m.dtype, "batch": sizes.decode_batch,
             "prompt": slots.BUCKET, "new_tokens": sizes.decode_new_tokens, "tokens_per_s": tokens_per_s,
             "call_s": seconds, "first_call_s": first_s}
  line = (f"{m.num_layers} layers x {m.embed_dim} {m.dtype}, batch {sizes.decode_batch}, prompt "
          f"{slots.BUCKET}, {sizes.decode_new_tokens} new tokens greedy: {tokens_per_s:,.0f} tokens/s "
          f"({seconds * 1e3:.0f} ms a call; first call with compile {first_s:.1f} s)")
  if not scan_layers and True in scanned:
    figures["ratio_to_scanned"] = tokens_per_s / scanned[True]
    line += f"; {figures['ratio_to_scanned']:.2f}x scanned"
  return line, figures


# --- rollout memory ---------------------------------------------------------------------------------------

def check_rollout_memory(module, sizes: Sizes, context: dict):
  """Compiled bytes of the largest generation program a config's RL rollouts run, from shapes alone
  (lmjax plan's `rollout_memory`)."""
  config = shrunk(stage_config(module.get_config(), "rl"), sizes)
  g = config.rollout
  start = time.perf_counter()
  # Only the memory is wanted: XLA:GPU's GEMM autotuner would run candidate kernels on buffers of the
  # program's real shapes, which for a program that does not fit may fail to allocate.
  options = {"xla_gpu_autotune_level": 0} if jax.default_backend() == "gpu" else None
  length, memory = rollout_memory(config, jax.devices()[0], options)
  compile_s = time.perf_counter() - start
  needed = memory.argument_size_in_bytes + memory.temp_size_in_bytes
  device_bytes, source = device_memory()
  m = config.model
  figures = {"batch": g.batch, "cache_length": length, "max_new_tokens": g.max_new_tokens,
             "layers": m.num_layers, "embed_dim": m.embed_dim, "vocab_size": m.vocab_size,
             "argument_bytes": memory.argument_size_in_bytes, "temp_bytes": memory.temp_size_in_bytes,
             "bytes": needed, "memory_bytes": device_bytes, "fits": needed <= device_bytes, "compile_s": compile_s}
  line = (f"{g.batch} slots x {length} cached tokens, {g.max_new_tokens} steps a call, {m.num_layers} layers x "
          f"{m.embed_dim}, vocab {m.vocab_size}: {size_text(needed)} (arguments "
          f"{size_text(memory.argument_size_in_bytes)} + temporaries {size_text(memory.temp_size_in_bytes)}) of "
          f"{size_text(device_bytes)} ({source}): {'fits' if needed <= device_bytes else 'DOES NOT FIT'}")
  return line, figures


def checks(sizes: Sizes) -> list[tuple[str, object]]:
  """(name, check(context) -> (line, figures)) in the order they run."""
  listed = [("device", lambda c: check_device(sizes, c))]
  for shape_name, module in (("1b", llama3_1b), ("8b", llama3_8b)):
    for implementation in attention_implementations():
      check = lambda c, i=implementation, s=shape_name, m=module: check_attention(i, s, m.get_config(), sizes, c)
      listed.append((f"attention {implementation} {shape_name}", check))
  listed += [("train llama3_1b", lambda c: check_train(sizes, c)),
             ("eval llama3_1b", lambda c: check_eval(sizes, c)),
             ("decode scanned", lambda c: check_decode(True, sizes, c)),
             ("decode unscanned", lambda c: check_decode(False, sizes, c))]
  for module in (speedrun_cpu, speedrun_pod):
    name = module.__name__.rsplit(".", 1)[-1]
    listed.append((f"rollout memory {name}", lambda c, m=module: check_rollout_memory(m, sizes, c)))
  return listed


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--tiny", action="store_true", help="toy sizes, for the CPU test")
  parser.add_argument("--json", metavar="OUT", help="also write every check's figures to this JSON file")
  parser.add_argument("--budget-s", type=float, default=300.0, help="start no check after this many seconds")
  args = parser.parse_args()
  if expected_platform() == "cpu":
    keep_freed_memory()  # as the lmjax CLI does, before JAX computes anything (lmjax/allocator.py)
  checklist = Checklist("gpu_check", args.json, args.budget_s, machine=machine(),
                        mode="tiny" if args.tiny else "full")
  print(f"gpu_check: machine: {checklist.summary['machine']}; {checklist.summary['date']}", flush=True)
  checklist.watch()
  context: dict = {}
  for name, check in checks(TINY if args.tiny else FULL):
    checklist.run(name, check, context)
  checklist.write()
  print(f"gpu_check: done in {checklist.summary['elapsed_s']:.0f} s", flush=True)
  sys.exit(0 if checklist.all_ran() else 1)


if __name__ == "__main__":
  main()
