"""`lmjax plan`: compile the real train step ahead of time for a mesh of N devices from shapes alone, and
report per device its memory against a chip's HBM, its FLOPs against 6·N·T, the expected step time and MFU;
when it does not fit, the first of a list of small changes that does (each checked by compiling it). The eval
step too, and for a chain config every training stage it runs (SFT, reward model, RL's policy step and
scoring pass, on each stage's own config) and RL's rollout program at rollout.batch; and one layer's
attention per device with the compiled implementation and with a fused kernel.

    lmjax plan --config configs/llama3_8b.py --mesh data=1,fsdp=256,tensor=1 --devices 256 --chip v5p

Nothing is allocated: the state is `eval_shape`d and the batch is `ShapeDtypeStruct`s, so the CLI runs it on
N fake CPU devices. Memory is XLA's buffer assignment of the compiled step on the CPU backend: the same
SPMD partitioning a TPU/GPU compile does, not the same fusion or layout decisions, so an estimate (leave
headroom), not a guarantee. XLA's cost analysis counts a loop body once, so the FLOPs of a scanned or
accumulated step are measured on loop-free 1- and 2-layer single-micro-batch variants and extrapolated:
linearly in depth, times the micro-batches (which counts the optimizer's few FLOPs once per micro-batch).

The package: `compiled` (each step compiled from shapes, its bytes per device: a `Plan`), `flops`,
`attention_memory` (one layer's attention, compiled and fused), `stages` (a chain config's training stages),
`changes` (what to change when it does not fit), `output` (the text and the JSON); `run` here ties them.
"""
import dataclasses
import json
import time

import jax

from lmjax.config import UserError
from lmjax.sharding import make_mesh
from lmjax.train.hardware import CHIPS, GiB, Chip, gib
from lmjax.train.plan import attention_memory
from lmjax.train.plan.changes import overrides_text, suggest, variant
from lmjax.train.plan.compiled import Plan, eval_step_bytes, fits, measure_memory
from lmjax.train.plan.flops import measure_flops
from lmjax.train.plan.output import as_json, lora_comparison, report, steps_table
from lmjax.train.plan.stages import chain_stage_steps, is_chain_config


def run(config, *, devices: int, chip: str | Chip = "v5p", efficiency: float = 0.5, flops: bool = True,
        suggest_changes: bool = True, json_output: bool = False) -> tuple[Plan, tuple[dict, Plan] | None]:
  """Plans `config` on the first `devices` JAX devices for `chip` (a name in CHIPS, or a Chip); prints the
  report and, if it does not fit, the first change that does; returns (plan, (change, its plan) or None)."""
  if isinstance(chip, str) and chip not in CHIPS:
    raise UserError(f"unknown chip {chip!r}; choose one of {', '.join(CHIPS)}")
  if jax.device_count() < devices:
    raise UserError(f"JAX sees {jax.device_count()} devices, not {devices}: run `lmjax plan --devices "
                    f"{devices}` (it sets XLA_FLAGS=--xla_force_host_platform_device_count before JAX runs)")
  if not 0 < efficiency <= 1:
    raise UserError(f"--efficiency={efficiency} must be in (0, 1]")
  target, chosen = CHIPS[chip] if isinstance(chip, str) else chip, jax.devices()[:devices]
  plan = measure_memory(config, chosen)
  if flops:
    start = time.perf_counter()
    plan = dataclasses.replace(plan, flops=measure_flops(config, chosen),
                               compile_seconds=plan.compile_seconds + time.perf_counter() - start)
  first = "pretrain" if config.train.loss == "next_token" else config.train.loss
  steps = [(first, "train", plan.total), (first, "eval", eval_step_bytes(config, chosen))]
  steps += chain_stage_steps(config, chosen) if is_chain_config(config) else []
  attention = attention_memory.attention_memory(config, make_mesh(plan.mesh, chosen), target)
  if json_output:
    print(json.dumps(as_json(target, devices, steps, attention)), flush=True)
    return plan, None
  print(report(config, plan, target, efficiency), flush=True)
  if config.model.lora.rank:
    print(lora_comparison(config, plan, measure_memory(variant(config, **{"model.lora.rank": 0}), chosen)))
  print("\n".join(attention_memory.report_lines(attention, target, gib)), flush=True)
  print("every step, per device (eval and scoring micro-batched like the stage's train step):\n"
        + steps_table(steps, target), flush=True)
  suggestion = None
  if not fits(plan, target) and suggest_changes:
    print(f"does not fit in {target.hbm_bytes / GiB:.0f} GiB; compiling smaller-memory changes in order:")
    suggestion = suggest(config, chosen, target, plan)
    if suggestion is None:
      print("none of them fits: use more devices, a smaller batch or a smaller model")
    else:
      change, fitted = suggestion
      print(f"smallest change that fits: {overrides_text(change)} -> {gib(fitted.total)} per device "
            f"({fitted.total / target.hbm_bytes:.0%} of {target.hbm_bytes / GiB:.0f} GiB; compiled)")
  return plan, suggestion
