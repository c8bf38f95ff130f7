"""The transformer's hidden projections as a parameter tree shows them: which leaves are matrices that map
the residual stream (or heads) to features, and which of their dims are inputs.

Shared by what treats those matrices specially and must not reach into the model files: Muon orthogonalises
their updates (`lmjax.optim`) and LoRA adapts them (`lmjax.train.lora`). A leaf is named by the last key of
its path (`blocks/0/attn/q`, or `blocks/attn/q` with a leading [L] axis under `model.scan_layers`); the
embedding, the output head, norm scales and anything else are not projections.
"""
import dataclasses

import jax

# name -> (input dims, total dims) of one layer's kernel: q/k/v [d, heads, h], o [heads, h, d], MLP [d, f]/[f, d]
KERNELS = {"q": (1, 3), "k": (1, 3), "v": (1, 3), "o": (2, 3), "gate": (1, 2), "up": (1, 2), "down": (1, 2)}


@dataclasses.dataclass(frozen=True)
class Layout:
  """Where a projection kernel's dims are: `lead` stacked-layer dims, then inputs, then outputs."""
  name: str
  lead: int
  inputs: tuple[int, ...]
  outputs: tuple[int, ...]


def leaf_name(path) -> str | None:
  """The last dict key of a tree path (`.value` of an nnx Variable skipped), or None."""
  names = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
  return str(names[-1]) if names else None


def layout(name, ndim: int) -> Layout | None:
  """The Layout of a leaf called `name` with `ndim` dims if it is a projection kernel, else None."""
  if name not in KERNELS or ndim < KERNELS[name][1]:
    return None
  inputs, total = KERNELS[name]
  lead = ndim - total
  return Layout(name, lead, tuple(range(lead, lead + inputs)), tuple(range(lead + inputs, ndim)))
