"""The optimizer: AdamW (or SGD, or Muon for the hidden matrices) with decoupled weight decay on matrices
only (never norm scales or biases), global-norm clipping, and a linear warm-up followed by cosine, linear or
constant decay."""
import jax
import optax
from optax.contrib import MuonDimensionNumbers, muon

from lmjax import projections


def lr_schedule(optim_config, schedule_config, total_steps: int) -> optax.Schedule:
  """Learning rate per step: 0 → optim.lr over warmup_steps, then decays to min_lr_ratio·lr by total_steps."""
  peak, warmup = optim_config.lr, schedule_config.warmup_steps
  floor = peak * schedule_config.min_lr_ratio
  decay_steps = max(total_steps - warmup, 1)
  decays = {
      "cosine": optax.cosine_decay_schedule(peak, decay_steps, alpha=schedule_config.min_lr_ratio),
      "linear": optax.linear_schedule(peak, floor, decay_steps),
      "constant": optax.constant_schedule(peak),
  }
  if schedule_config.decay not in decays:
    raise ValueError(f"config.schedule.decay={schedule_config.decay!r}; use one of {', '.join(decays)}")
  warmup_fn = optax.linear_schedule(0.0, peak, max(warmup, 1))
  return optax.join_schedules([warmup_fn, decays[schedule_config.decay]], [warmup])


def never_decays(name: str | None) -> bool:
  """Norm scales (RMSNorm's `scale`, q_norm's and k_norm's too) and biases (q/k/v's, the scalar head's), by
  leaf name: under model.scan_layers they carry a leading [L] axis, so their ndim does not tell them apart."""
  return name == "scale" or name == "bias" or (name or "").endswith("_bias")


def decay_mask(params):
  """True for parameters that get weight decay: the matrices (embedding, output head, projections, LoRA's
  factors), never a norm scale or a bias, stacked or not."""
  return jax.tree_util.tree_map_with_path(
      lambda path, p: p.ndim > 1 and not never_decays(projections.leaf_name(path)), params)


OPTIMIZERS = ("adamw", "sgd", "muon")


def muon_dimensions(params):
  """Per leaf, Muon's reduction (input) and output axes for a hidden projection (`lmjax.projections`: q, k,
  v, o and the MLP's; a stacked-layer axis is a batch axis), or None for what AdamW trains instead: the
  embedding, the output head, norm scales, a scalar head."""
  def dimensions(path, x):
    where = projections.layout(projections.leaf_name(path), x.ndim)
    return None if where is None else MuonDimensionNumbers(where.inputs, where.outputs)
  return jax.tree_util.tree_map_with_path(dimensions, params)


def _muon(optim_config, schedule: optax.Schedule) -> optax.GradientTransformation:
  """optax's Muon (Nesterov momentum optim.muon_beta, Newton–Schulz orthogonalised) at optim.muon_lr on the
  hidden matrices, and on everything else the AdamW of optim.name="adamw" at optim.lr (as nanochat and the
  Muon authors do); both follow the schedule's shape and decay decoupled by optim.weight_decay."""
  labels = lambda params: jax.tree.map(lambda d: "adamw" if d is None else "muon", muon_dimensions(params),
                                       is_leaf=lambda d: d is None or isinstance(d, MuonDimensionNumbers))
  muon_schedule = lambda step: schedule(step) * (optim_config.muon_lr / optim_config.lr)
  return optax.partition({
      "muon": muon(muon_schedule, beta=optim_config.muon_beta, weight_decay=optim_config.weight_decay,
                   muon_weight_dimension_numbers=muon_dimensions),
      "adamw": optax.adamw(schedule, b1=optim_config.b1, b2=optim_config.b2, eps=optim_config.eps,
                           weight_decay=optim_config.weight_decay, mask=decay_mask),
  }, labels)


def make_optimizer(optim_config, schedule: optax.Schedule) -> optax.GradientTransformation:
  """optim.name (AdamW, SGD whose step is proportional to the gradient, or Muon) with decoupled weight decay,
  preceded by clipping the global gradient norm at optim.clip_norm (0 = no clipping)."""
  if optim_config.name == "adamw":
    update = optax.adamw(schedule, b1=optim_config.b1, b2=optim_config.b2, eps=optim_config.eps,
                         weight_decay=optim_config.weight_decay, mask=decay_mask)
  elif optim_config.name == "sgd":
    update = optax.chain(optax.add_decayed_weights(optim_config.weight_decay, mask=decay_mask),
                         optax.sgd(schedule))
  elif optim_config.name == "muon":
    update = _muon(optim_config, schedule)
  else:
    raise ValueError(f"config.optim.name={optim_config.name!r}; use one of {', '.join(OPTIMIZERS)}")
  if optim_config.clip_norm <= 0:
    return update
  return optax.chain(optax.clip_by_global_norm(optim_config.clip_norm), update)
