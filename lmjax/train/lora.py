"""LoRA as a parameter transform: low-rank adapters trained on a frozen base, outside the model files.

For each adapted projection W [*L, *in, *out] (`lmjax.projections`; L a stacked-layer axis) the trainable
tree holds A [*L, *in, r] (normal, std 1/√fan_in) and B [*L, r, *out] (zeros, so step 0 is the base model),
each carrying W's logical axes on the dims it shares with W. The model sees W + (alpha/r)·A·B; the rest of
the base is read as it is. A LoRA run's checkpoints hold the adapters (and their optimizer state) only; its
base is the run in `model.lora.base_workdir`, which the stage records from its own base run, and loading the
run (inference, export, a later stage) merges the two.
"""
import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from lmjax import fs, projections
from lmjax.config import ConfigError


@dataclasses.dataclass(frozen=True)
class Lora:
  """config.model.lora: adapters of `rank` on the `targets` projections, scaled by alpha / rank."""
  rank: int
  alpha: float
  targets: tuple[str, ...]

  @property
  def scale(self) -> float:
    return self.alpha / self.rank

  def adapted(self, path: tuple, ndim: int) -> projections.Layout | None:
    """The layout of the kernel at flat `path` if this Lora adapts it, else None."""
    found = projections.layout(path[-1], ndim)
    return found if found is not None and found.name in self.targets else None

  def merge(self, base, adapters) -> nnx.State:
    """The model's parameters: `base` with W + scale·A·B at every adapted kernel (same tree and dtypes)."""
    pairs = dict(nnx.to_flat_state(_as_state(adapters)))

    def merged(path, w):
      if path + ("a",) not in pairs:
        return w
      delta = low_rank_product(pairs[path + ("a",)].get_value(), pairs[path + ("b",)].get_value(), w.shape)
      return (w.astype(jnp.float32) + self.scale * delta).astype(w.dtype)

    return nnx.from_flat_state([(path, v.replace(merged(path, v.get_value())))
                                for path, v in nnx.to_flat_state(_as_state(base))])


def from_config(model_config) -> Lora | None:
  """The Lora of a config.model (None when model.lora.rank is 0, or the section is absent: a full run)."""
  spec = model_config.get("lora")
  if not spec or not spec.rank:
    return None
  targets = tuple(spec.targets)
  unknown = [t for t in targets if t not in projections.KERNELS]
  if spec.rank < 0 or not targets or unknown or spec.alpha <= 0:
    raise ConfigError(f"config.model.lora: rank={spec.rank} and alpha={spec.alpha} must be positive, and "
                      f"targets={targets} a non-empty subset of {', '.join(projections.KERNELS)}")
  return Lora(int(spec.rank), float(spec.alpha), targets)


def low_rank_product(a, b, shape: tuple[int, ...]) -> jax.Array:
  """A [*L, *in, r] · B [*L, r, *out] → float32 [*L, *in, *out] = `shape` (the kernel's)."""
  lead = b.ndim - 1 - (len(shape) - (a.ndim - 1))  # B's dims: lead, r, then W's output dims
  r = a.shape[-1]
  a_lir = a.reshape(*a.shape[:lead], -1, r).astype(jnp.float32)
  b_lro = b.reshape(*b.shape[:lead], r, -1).astype(jnp.float32)
  return jnp.matmul(a_lir, b_lro).reshape(shape)


def init_adapters(spec: Lora, base, seed: int) -> nnx.State:
  """Fresh adapters for every target kernel of `base` (arrays or shapes): A normal, B zeros."""
  flat = []
  for i, (path, variable) in enumerate(nnx.to_flat_state(_as_state(base))):
    shape, dtype = variable.get_value().shape, variable.get_value().dtype
    where = spec.adapted(path, len(shape))
    if where is None:
      continue
    axes = variable.get_metadata().get("logical_axes") or (None,) * len(shape)
    lead_in = where.lead + len(where.inputs)
    key = jax.random.fold_in(jax.random.key(seed), i)
    a = jax.random.normal(key, (*shape[:lead_in], spec.rank), jnp.float32)
    a = a / math.sqrt(math.prod(shape[where.lead:lead_in]))
    b = jnp.zeros((*shape[:where.lead], spec.rank, *shape[lead_in:]), jnp.float32)
    flat += [(path + ("a",), nnx.Param(a.astype(dtype), logical_axes=(*axes[:lead_in], None))),
             (path + ("b",), nnx.Param(b.astype(dtype), logical_axes=(*axes[:where.lead], None,
                                                                       *axes[lead_in:])))]
  if not flat:
    raise ConfigError(f"config.model.lora.targets={spec.targets} match no parameter of the model")
  return nnx.from_flat_state(flat)


def trainable_count(adapters) -> int:
  """Elements of the adapters: rank × (fan_in + fan_out) per adapted kernel and layer."""
  return sum(math.prod(x.shape) for x in jax.tree.leaves(adapters))


def with_base(config, base_workdir: str):
  """A copy of a LoRA stage's config recording the run its adapters sit on (absolute, as loading needs it)."""
  if from_config(config.model) is None:
    return config
  config = config.copy_and_resolve_references()
  config.model.lora.base_workdir = fs.absolute(base_workdir)
  return config


def base_workdir(config) -> str:
  """The base run a saved LoRA run's adapters sit on."""
  path = config.model.lora.get("base_workdir", "")
  if not path:
    raise ConfigError("this LoRA run's config.model.lora.base_workdir is empty, so its base run is unknown; set "
                      "it to the run it was trained from")
  return path


def _as_state(tree) -> nnx.State:
  return tree if isinstance(tree, nnx.State) else nnx.State(tree)
