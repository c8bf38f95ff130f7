"""When a plan does not fit: small changes that lower memory (a change is {dotted config field: value}), tried
cheapest in step time first, each checked by compiling it."""
from lmjax.config import ConfigError
from lmjax.train.hardware import Chip, gib
from lmjax.train.plan.compiled import Plan, fits, measure_memory

# model.remat from most memory to least (and from least recomputation to most).
REMAT_ORDER = ("none", "dots_saveable", "dots_no_batch", "full")
MAX_ACCUM_FACTOR = 16  # the largest micro-batch split a suggestion tries
SKIP_MARGIN = 1.25  # a candidate estimated above this × the budget is not worth compiling


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
