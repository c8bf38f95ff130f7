"""A step's FLOPs per device from XLA's cost analysis, which counts a loop body once: a scanned or accumulated
step is measured on loop-free 1- and 2-layer single-micro-batch variants and extrapolated, linearly in depth,
times the micro-batches (which counts the optimizer's few FLOPs once per micro-batch)."""
from lmjax.train.hardware import Chip
from lmjax.train.plan.changes import variant
from lmjax.train.plan.compiled import Plan, compile_step


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


def step_time(plan: Plan, chip: Chip, efficiency: float) -> float:
  """Seconds per step if the chip runs the compiled FLOPs at `efficiency` × its peak (compute-bound)."""
  return plan.flops / (chip.peak_flops * efficiency)
