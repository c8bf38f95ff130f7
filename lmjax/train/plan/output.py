"""What `lmjax plan` prints: the plan as text (memory, FLOPs, step time and MFU), LoRA against full
fine-tuning, every step's memory against the chip's HBM, and the same as `--json`."""
from lmjax.model.transformer import ModelConfig, param_count
from lmjax.train.hardware import GiB, Chip, gib
from lmjax.train.plan import attention_memory
from lmjax.train.plan.compiled import Plan, fits
from lmjax.train.plan.flops import step_time


def as_json(chip: Chip, devices: int, steps: list[tuple[str, str, int]],
            attention: attention_memory.AttentionMemory | None = None) -> dict:
  """The plan as `lmjax plan --json` prints it: per stage and step, the memory per device and whether it
  fits; and one layer's attention memory per device by implementation (`attention_memory`)."""
  out = {"chip": chip.name, "devices": devices, "hbm_bytes_per_device": chip.hbm_bytes,
         "steps": [{"stage": stage, "step": step, "bytes_per_device": int(total),
                    "fits": bool(total <= chip.hbm_bytes)} for stage, step, total in steps]}
  return out if attention is None else {**out, "attention": attention_memory.as_json(attention)}


def steps_table(steps: list[tuple[str, str, int]], chip: Chip) -> str:
  """One line per stage and step: GiB per device against the chip's HBM."""
  return "\n".join(f"  {stage:<9} {step:<8} {gib(total):>12}   {'fits' if total <= chip.hbm_bytes else 'DOES NOT FIT'} "
                   f"({total / chip.hbm_bytes:.0%})" for stage, step, total in steps)


def report(config, plan: Plan, chip: Chip, efficiency: float) -> str:
  """The plan as the text `lmjax plan` prints."""
  m, t = config.model, config.train
  data, fsdp, tensor = plan.mesh
  devices = data * fsdp * tensor
  verdict = "fits" if fits(plan, chip) else "DOES NOT FIT"
  lines = [
      f"mesh data={data} fsdp={fsdp} tensor={tensor} ({devices} devices) on {chip.name}: "
      f"{chip.hbm_bytes / GiB:.0f} GiB HBM, {chip.peak_flops / 1e12:.0f} TFLOP/s bf16 per chip",
      f"model {param_count_text(config)} parameters, {m.num_layers} layers, scan_layers={m.scan_layers}, "
      f"remat={m.remat}, dtype={m.dtype}/{m.param_dtype}; batch {t.batch_size} x {t.seq_len} tokens in "
      f"{t.grad_accum_steps} micro-batch(es) of {t.batch_size // t.grad_accum_steps}",
      "memory per device",
      *([f"  frozen base (LoRA)        {gib(plan.frozen):>12}"] if plan.frozen else []),
      f"  parameters {'(trained)' if plan.frozen else '         '}     {gib(plan.params):>12}",
      f"  optimizer state           {gib(plan.opt_state):>12}",
      f"  batch                     {gib(plan.batch):>12}",
      f"  activations + workspace   {gib(max(plan.temporaries - plan.gradients, 0)):>12}"
      "   (XLA temporaries minus gradients)",
      f"  gradients                 {gib(plan.gradients):>12}   (one copy, like the parameters)",
      f"  total (compiled)          {gib(plan.total):>12}   of {chip.hbm_bytes / GiB:.0f} GiB: {verdict} "
      f"({plan.total / chip.hbm_bytes:.0%})",
      f"replicated parameters       {plan.replicated_fraction:>11.2%}",
  ]
  if plan.flops is not None:
    seconds = step_time(plan, chip, efficiency)
    lines += [
        "compute per device per step",
        f"  FLOPs (compiled)          {plan.flops:>12.3e}",
        f"  6·N·T                     {plan.six_nt:>12.3e}   compiled/6NT = {plan.flops / plan.six_nt:.2f}"
        " (attention, remat recomputation, optimizer)",
        f"  model FLOPs (6NT + attn)  {plan.model_flops:>12.3e}",
        f"  step time at {efficiency:.0%} of peak {seconds:>9.2f} s   "
        f"MFU {plan.model_flops / seconds / chip.peak_flops:.1%}   "
        f"{t.batch_size * t.seq_len / seconds:,.0f} tokens/s",
    ]
  if m.remat != "none" and not m.scan_layers:
    lines.append("note: remat without scan_layers barely lowers XLA:CPU's figure (its scheduler runs the "
                 "recomputation early); plan with --config.model.scan_layers=true")
  lines.append(f"compile {plan.compile_seconds:.1f} s")
  return "\n".join(lines)


def lora_comparison(config, lora_plan: Plan, full: Plan) -> str:
  """Per-device memory of the LoRA step against the same step training every weight (both compiled)."""
  rows = [("parameters (base + trained)", lora_plan.frozen + lora_plan.params, full.params),
          ("optimizer state", lora_plan.opt_state, full.opt_state),
          ("XLA temporaries", lora_plan.temporaries, full.temporaries),
          ("total (compiled)", lora_plan.total, full.total)]
  lora = config.model.lora
  head = f"LoRA rank {lora.rank} on {','.join(lora.targets)} against full fine-tuning, per device:"
  return "\n".join([head, f"  {'':<28} {'LoRA':>12} {'full':>12}"]
                   + [f"  {name:<28} {gib(a):>12} {gib(b):>12}" for name, a, b in rows])


def param_count_text(config) -> str:
  n = param_count(ModelConfig.from_config(config.model))
  return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"
