"""`lmjax plan`: compile the real train step ahead of time for a mesh of N devices from shapes alone, and
report per device its memory against a chip's HBM, its FLOPs against 6·N·T, the expected step time and MFU;
when it does not fit, the first of a list of small changes that does (each checked by compiling it). The eval
step too, and for a chain config every training stage it runs (SFT, reward model, RL's policy step and
scoring pass, on each stage's own config) and RL's rollout program at rollout.batch; and one layer's
attention per device with the compiled implementation and with a fused kernel (`attention_memory`).

    lmjax plan --config configs/llama3_8b.py --mesh data=1,fsdp=256,tensor=1 --devices 256 --chip v5p

Nothing is allocated: the state is `eval_shape`d and the batch is `ShapeDtypeStruct`s, so the CLI runs it on
N fake CPU devices. Memory is XLA's buffer assignment of the compiled step on the CPU backend: the same
SPMD partitioning a TPU/GPU compile does, not the same fusion or layout decisions, so an estimate (leave
headroom), not a guarantee. XLA's cost analysis counts a loop body once, so the FLOPs of a scanned or
accumulated step are measured on loop-free 1- and 2-layer single-micro-batch variants and extrapolated:
linearly in depth, times the micro-batches (which counts the optimizer's few FLOPs once per micro-batch).
"""
import dataclasses
import json
import math
import time

import jax
import jax.numpy as jnp
from jax.sharding import SingleDeviceSharding

from lmjax import losses
from lmjax.config import ConfigError, UserError
from lmjax.model.transformer import ModelConfig, param_count
from lmjax.sharding import make_mesh
from lmjax.train import attention_memory
from lmjax.train.hardware import CHIPS, GiB, Chip
from lmjax.train.loop import model_flops_per_step
from lmjax.train.setup import TrainSetup, build_train_setup
from lmjax.train.step import make_eval_step, make_train_step

# model.remat from most memory to least (and from least recomputation to most).
REMAT_ORDER = ("none", "dots_saveable", "dots_no_batch", "full")
MAX_ACCUM_FACTOR = 16  # the largest micro-batch split a suggestion tries
SKIP_MARGIN = 1.25  # a candidate estimated above this × the budget is not worth compiling


@dataclasses.dataclass(frozen=True)
class Plan:
  """One compiled configuration. Memory in bytes per device; FLOPs per device per step."""
  mesh: tuple[int, int, int]
  params: int  # from shapes and shardings: the trained ones (LoRA: the adapters)
  opt_state: int  # from shapes and shardings
  batch: int  # from shapes and shardings
  arguments: int  # compiled: everything the step reads (state, batch; jit drops an unused rng)
  temporaries: int  # compiled: activations kept for the backward pass, gradients, workspace
  total: int  # compiled: arguments + temporaries + outputs not aliased to (donated) arguments
  replicated_fraction: float
  compile_seconds: float
  flops: float | None = None  # compiled cost analysis (None until measured)
  model_flops: float = 0.0  # 6·N·T + attention (PaLM's model FLOPs), per device
  six_nt: float = 0.0  # 6·N·T alone, per device
  frozen: int = 0  # LoRA's frozen base, from shapes and shardings (0 for a full run)

  @property
  def gradients(self) -> int:
    """The gradients' share of the temporaries: one value per parameter, sharded like it."""
    return self.params


def bytes_per_device(shapes_tree, shardings_tree) -> int:
  """Bytes one device holds of a tree of arrays: each leaf's shard shape × its item size."""
  return sum(math.prod(s.shard_shape(x.shape)) * x.dtype.itemsize
             for x, s in zip(jax.tree.leaves(shapes_tree), jax.tree.leaves(shardings_tree)))


_TOKEN_KEYS = ("tokens", "positions", "segment_ids", "targets")  # int32 [b, t]; other [b, t] keys are float32
_ROW_KEYS = ("chosen_index", "rejected_index")  # int32 [b]: one position per row
_ROW_VALUES = ("ref_chosen_logprob", "ref_rejected_logprob")  # float32 [b]: one value per row


def train_loss(config) -> losses.Loss:
  """config.train.loss's entry of the loss table."""
  if config.train.loss not in losses.LOSSES:
    raise ConfigError(f"config.train.loss={config.train.loss!r}; use one of {', '.join(losses.LOSSES)}")
  return losses.LOSSES[config.train.loss]


def abstract_batch(config, batch_sharding) -> dict:
  """The batch of config.train.loss as sharded shapes: [batch_size, seq_len] per key (per row for indices)."""
  rows, seq = config.train.batch_size, config.train.seq_len
  def shape(key):
    if key in _ROW_KEYS or key in _ROW_VALUES:
      return jax.ShapeDtypeStruct((rows,), jnp.int32 if key in _ROW_KEYS else jnp.float32, sharding=batch_sharding)
    return jax.ShapeDtypeStruct((rows, seq), jnp.int32 if key in _TOKEN_KEYS else jnp.float32,
                                sharding=batch_sharding)
  return {key: shape(key) for key in train_loss(config).batch_keys}


def compile_step(config, devices) -> tuple[TrainSetup, dict, jax.stages.Compiled, float]:
  """(setup, abstract batch, compiled step, compile seconds): the train loop's step for config.train.loss,
  lowered from shapes."""
  loss = train_loss(config)
  setup = build_train_setup(config, devices=devices, scalar_head=loss.scalar_head)
  batch = abstract_batch(config, setup.batch_sharding)
  step = make_train_step(setup.graphdef, loss.fn, setup.optimizer, setup.shardings,
                         batch_sharding=setup.batch_sharding, grad_accum_steps=config.train.grad_accum_steps,
                         lr_schedule=setup.schedule, frozen=setup.abstract_frozen())
  start = time.perf_counter()
  rng = jax.eval_shape(lambda: jax.random.key(0))
  compiled = step.lower(setup.abstract_state, batch, rng).compile()
  return setup, batch, compiled, time.perf_counter() - start


def measure_memory(config, devices) -> Plan:
  """Compiles `config`'s step on `devices` and reads its memory (FLOPs are left to `measure_flops`)."""
  setup, batch, compiled, seconds = compile_step(config, devices)
  mem = compiled.memory_analysis()
  t = config.train
  tokens, model = t.batch_size * t.seq_len / len(devices), setup.model_config
  matmul_params = param_count(model) - (0 if model.tie_embeddings else model.vocab_size * model.embed_dim)
  return Plan(
      mesh=tuple(setup.mesh.shape.values()),
      params=bytes_per_device(setup.abstract_state.params, setup.shardings.params),
      opt_state=bytes_per_device(setup.abstract_state.opt_state, setup.shardings.opt_state),
      batch=bytes_per_device(batch, {k: v.sharding for k, v in batch.items()}),
      arguments=mem.argument_size_in_bytes, temporaries=mem.temp_size_in_bytes,
      total=mem.argument_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes
      + mem.temp_size_in_bytes,
      replicated_fraction=setup.replicated_fraction, compile_seconds=seconds,
      model_flops=model_flops_per_step(model, t.loss, t.batch_size, t.seq_len) / len(devices),
      six_nt=6 * matmul_params * tokens,
      frozen=bytes_per_device(setup.abstract_model_params, setup.model_shardings) if setup.lora else 0)


def eval_step_bytes(config, devices) -> int:
  """Bytes per device of the compiled eval step, micro-batched like the train step (arguments, outputs not
  aliased to them, temporaries)."""
  loss = train_loss(config)
  setup = build_train_setup(config, devices=devices, scalar_head=loss.scalar_head)
  step = make_eval_step(setup.graphdef, loss.fn, setup.shardings.params, batch_sharding=setup.batch_sharding,
                        micro_batches=config.train.grad_accum_steps, frozen=setup.abstract_frozen())
  batch = abstract_batch(config, setup.batch_sharding)
  mem = step.lower(setup.abstract_state.params, batch).compile().memory_analysis()
  return mem.argument_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes + mem.temp_size_in_bytes


def score_step_bytes(config, devices) -> int:
  """Bytes per device of RL's scoring pass (`experience.make_scorer`: the policy's log-probs, and values with
  a critic) over one chunk of `settings.score_batch(config)` rows, as RL compiles it."""
  from lmjax.rl import experience
  from lmjax.rl.advantages import ESTIMATORS
  from lmjax.rl.settings import score_batch
  critic = ESTIMATORS[config.rl.advantage].uses_values
  setup = build_train_setup(config, devices=devices, scalar_head=critic)
  rows = {k: jax.ShapeDtypeStruct((score_batch(config), config.train.seq_len), jnp.int32,
                                  sharding=setup.batch_sharding) for k in _TOKEN_KEYS}
  score = experience.make_scorer(setup.graphdef, with_values=critic)
  params = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        setup.abstract_model_params, setup.model_shardings)  # LoRA scores merged parameters
  mem = score.lower(params, rows).compile().memory_analysis()
  return mem.argument_size_in_bytes + mem.output_size_in_bytes - mem.alias_size_in_bytes + mem.temp_size_in_bytes


def rollout_memory(config, device, compiler_options: dict | None = None):
  """(cache length, memory analysis) of the decode program RL's rollout engine runs on one device, compiled
  from shapes: rollout.batch slots whose cache holds RL's longest row (train.seq_len + 1 tokens), in chunks
  of rollout.max_new_tokens steps. (Its per-slot prefill is one row: far smaller.)"""
  from lmjax.infer import engine, sampler, slots
  from lmjax.model import model_definition
  g = config.rollout
  length = engine.cache_length(config.train.seq_len + 1 - g.max_reply_tokens, g.max_reply_tokens)
  graphdef, params = model_definition(config)
  on_device = SingleDeviceSharding(device)
  shaped = lambda tree: jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=on_device), tree)
  params = shaped(params)
  cache, logits = shaped(jax.eval_shape(lambda p: slots.init_state(graphdef, p, g.batch, length), params))
  knobs = sampler.knobs_of(sampler.SamplingParams(temperature=g.temperature, top_k=g.top_k))
  rows = lambda dtype: jax.ShapeDtypeStruct((g.batch,), dtype, sharding=on_device)
  lowered = slots.decode.lower(graphdef, params, cache, logits, rows(jnp.int32), rows(bool), rows(jnp.int32),
                               rows(jnp.uint32), knobs, g.max_new_tokens)
  return length, lowered.compile(compiler_options=compiler_options).memory_analysis()


def rollout_bytes(config, device) -> int:
  """Bytes of `rollout_memory`'s program: arguments + temporaries."""
  memory = rollout_memory(config, device)[1]
  return memory.argument_size_in_bytes + memory.temp_size_in_bytes


def is_chain_config(config) -> bool:
  """A config made for `lmjax run` (it sets a post-training stage's own fields, config.stage.<sft|rm|rl|dpo>):
  plan every training stage it runs."""
  return any(config.stage.get(name) for name in ("sft", "rm", "rl", "dpo"))


def chain_stage_steps(config, devices) -> list[tuple[str, str, int]]:
  """(stage, step, bytes per device) of SFT's, the reward model's and DPO's train and eval steps, and RL's policy
  step, its scoring pass (rl.score_batch rows at a time) and its rollout program, each on the stage's own
  config (config.stage.<name> applied)."""
  from lmjax.chain.stages import chain_stages, stage_config
  from lmjax.rl.settings import policy_loss
  losses_of = {"sft": lambda c: "next_token", "rm": lambda c: "pairwise_bce", "rl": lambda c: policy_loss(c.rl)[0],
               "dpo": lambda c: c.dpo.loss}
  out = []
  for stage in (s for s in chain_stages(config) if s in losses_of):
    stage_cfg = stage_config(config, stage)
    stage_cfg.train.loss = losses_of[stage](stage_cfg)
    scoring = ("score", score_step_bytes) if stage == "rl" else ("eval", eval_step_bytes)
    out += [(stage, "train", measure_memory(stage_cfg, devices).total),
            (stage, scoring[0], scoring[1](stage_cfg, devices))]
    if stage == "rl":
      out.append((stage, "rollout", rollout_bytes(stage_cfg, devices[0])))
  return out


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


def variant(config, **fields):
  """A copy of `config` with dotted fields replaced: variant(c, **{"model.remat": "full"})."""
  out = config.copy_and_resolve_references()
  for name, value in fields.items():
    *parents, leaf = name.split(".")
    node = out
    for part in parents:
      node = node[part]
    node[leaf] = value
  return out


def _flops(config, devices) -> float:
  _, _, compiled, _ = compile_step(config, devices)
  cost = compiled.cost_analysis()
  return float((cost[0] if isinstance(cost, list) else cost)["flops"])


def measure_flops(config, devices) -> float:
  """FLOPs per device of one step, from XLA's cost analysis of loop-free compiles (see the module doc)."""
  m, t = config.model, config.train
  if not m.scan_layers and t.grad_accum_steps == 1:
    return _flops(config, devices)
  micro = t.batch_size // t.grad_accum_steps
  one, two = (_flops(variant(config, **{"model.num_layers": depth, "model.scan_layers": False,
                                        "train.batch_size": micro, "train.grad_accum_steps": 1}), devices)
              for depth in (1, 2))
  return t.grad_accum_steps * (one + (m.num_layers - 1) * (two - one))


def candidate_changes(config, mesh: tuple[int, int, int]) -> list[dict]:
  """Changes that lower memory, cheapest in step time first: a stronger remat policy, folding pure data
  parallelism into FSDP, then smaller micro-batches; last, the strongest remat with smaller micro-batches."""
  t, (data, fsdp, tensor) = config.train, mesh
  remats = REMAT_ORDER[REMAT_ORDER.index(config.model.remat) + 1:]
  changes = [{"model.remat": r} for r in remats]
  if data > 1:
    changes.append({"mesh.data": 1, "mesh.fsdp": data * fsdp, "mesh.tensor": tensor})
  accums = []
  factor = 2
  while factor <= MAX_ACCUM_FACTOR and (t.batch_size // (t.grad_accum_steps * factor)) % (data * fsdp) == 0 \
      and t.batch_size % (t.grad_accum_steps * factor) == 0:
    accums.append(t.grad_accum_steps * factor)
    factor *= 2
  changes += [{"train.grad_accum_steps": a} for a in accums]
  if remats:
    changes += [{"model.remat": REMAT_ORDER[-1], "train.grad_accum_steps": a} for a in accums]
  return changes


def fits(plan: Plan, chip: Chip) -> bool:
  return plan.total <= chip.hbm_bytes


def estimate_smaller_micro_batch(measured: Plan, old_accum: int, new_accum: int) -> float:
  """Total bytes with micro-batches old_accum/new_accum as large: the temporaries (activations, logits)
  scale with the micro-batch's rows; a rough bound used only to skip hopeless compiles."""
  return measured.arguments + measured.temporaries * old_accum / new_accum


def suggest(config, devices, chip: Chip, plan: Plan) -> tuple[dict, Plan] | None:
  """The first candidate change whose compiled step fits `chip`, with its plan; None if none does.

  A smaller micro-batch whose estimate (from the compiled plan with the same remat policy) exceeds the
  budget by more than SKIP_MARGIN is skipped without compiling; every reported fit is compiled.
  """
  measured = {config.model.remat: plan}
  for change in candidate_changes(config, plan.mesh):
    remat = change.get("model.remat", config.model.remat)
    accum = change.get("train.grad_accum_steps")
    if accum is not None and remat in measured:
      estimate = estimate_smaller_micro_batch(measured[remat], config.train.grad_accum_steps, accum)
      if estimate > SKIP_MARGIN * chip.hbm_bytes:
        print(f"  skipped {overrides_text(change)}: estimated {gib(estimate)}", flush=True)
        continue
    try:
      candidate = measure_memory(variant(config, **change), devices)
    except ConfigError:
      continue
    if accum is None and set(change) == {"model.remat"}:
      measured[remat] = candidate
    print(f"  tried {overrides_text(change)}: {gib(candidate.total)} per device (compiled)", flush=True)
    if fits(candidate, chip):
      return change, candidate
  return None


def overrides_text(change: dict) -> str:
  return " ".join(f"--config.{name}={value}" for name, value in change.items())


def gib(n: float) -> str:
  return f"{n / GiB:.2f} GiB"


def step_time(plan: Plan, chip: Chip, efficiency: float) -> float:
  """Seconds per step if the chip runs the compiled FLOPs at `efficiency` × its peak (compute-bound)."""
  return plan.flops / (chip.peak_flops * efficiency)


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
