"""The optimizer: AdamW with decoupled weight decay on matrices only, global-norm clipping, and a
linear warm-up followed by cosine, linear or constant decay."""
import jax
import optax


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


def decay_mask(params):
  """True for parameters that get weight decay: matrices, not norm scales."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


OPTIMIZERS = ("adamw", "sgd")


def make_optimizer(optim_config, schedule: optax.Schedule) -> optax.GradientTransformation:
  """optim.name (AdamW, or SGD whose step is proportional to the gradient) with decoupled weight decay,
  preceded by clipping the global gradient norm at optim.clip_norm (0 = no clipping)."""
  if optim_config.name == "adamw":
    update = optax.adamw(schedule, b1=optim_config.b1, b2=optim_config.b2, eps=optim_config.eps,
                         weight_decay=optim_config.weight_decay, mask=decay_mask)
  elif optim_config.name == "sgd":
    update = optax.chain(optax.add_decayed_weights(optim_config.weight_decay, mask=decay_mask),
                         optax.sgd(schedule))
  else:
    raise ValueError(f"config.optim.name={optim_config.name!r}; use one of {', '.join(OPTIMIZERS)}")
  if optim_config.clip_norm <= 0:
    return update
  return optax.chain(optax.clip_by_global_norm(optim_config.clip_norm), update)
