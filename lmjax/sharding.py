"""The device mesh and the map from logical axis names to mesh axes: the only module naming mesh axes.

Model code labels every parameter and main activation with logical names ('embed', 'heads', 'batch', ...);
the config's `rules` table says which mesh axis, if any, each one is split over.
"""
import dataclasses
import math

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")


def make_mesh(shape: tuple[int, int, int], devices=None) -> Mesh:
  """A (data, fsdp, tensor) mesh with Auto axes (the model is written for propagation, not explicit types),
  over the devices as `device_grid` lays them out."""
  devices = jax.devices() if devices is None else devices
  return Mesh(device_grid(shape, devices), MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES))


def device_grid(shape: tuple[int, int, int], devices) -> np.ndarray:
  """The first prod(shape) devices laid out as the (data, fsdp, tensor) mesh.

  Within a slice the order follows the interconnect's topology (`mesh_utils.create_device_mesh`, as
  `jax.make_mesh` does), so `tensor` and `fsdp` neighbours are physical neighbours. Across TPU slices
  (devices with several `slice_index` values) the slices go on `data`, the only axis whose collectives should
  cross the slow data-center network. The plain in-order grid is kept where the topology-aware one would hand
  a process non-contiguous batch rows, which its loader (one block of rows per process) cannot read.
  """
  devices = list(devices)[: math.prod(shape)]
  slices = len({getattr(d, "slice_index", 0) for d in devices})
  if slices > 1:
    if shape[0] % slices:
      raise ValueError(f"config.mesh.data={shape[0]} must be a multiple of the {slices} slices, so that only "
                       f"the data axis crosses between them; set --config.mesh.data={slices}")
    grid = mesh_utils.create_hybrid_device_mesh((shape[0] // slices, *shape[1:]), (slices, 1, 1), devices,
                                                allow_split_physical_axes=True)
  else:
    grid = mesh_utils.create_device_mesh(shape, devices, allow_split_physical_axes=True)
  return grid if process_rows_contiguous(grid) else np.asarray(devices, dtype=object).reshape(shape)


def process_rows_contiguous(grid) -> bool:
  """Whether every process's devices hold one contiguous run of the batch's data-parallel shards (the
  flattened data × fsdp index; batch rows are split over those two axes)."""
  shards = np.asarray(grid).reshape(grid.shape[0] * grid.shape[1], -1)
  for process in {d.process_index for d in shards.flat}:
    held = np.flatnonzero([any(d.process_index == process for d in row) for row in shards])
    if held[-1] - held[0] + 1 != len(held):
      return False
  return True


def rules_from_config(rules_config) -> tuple[tuple[str, tuple[str, ...] | str | None], ...]:
  """The config's rules table as a hashable tuple of (logical, mesh axes) pairs, mesh axes checked."""
  rules = []
  for logical, target in rules_config.items():
    targets = target if isinstance(target, tuple) else (target,)
    for axis in targets:
      if axis is not None and axis not in MESH_AXES:
        raise ValueError(f"config.rules.{logical}={target!r} names an unknown mesh axis {axis!r}; "
                         f"use one of {MESH_AXES} or None")
    rules.append((logical, target))
  return tuple(rules)


def logical_to_spec(names: tuple[str | None, ...], rules) -> PartitionSpec:
  """PartitionSpec for an array whose dims have the given logical names; a mesh axis is used at most once."""
  table = dict(rules)
  used, spec = set(), []
  for name in names:
    if name is not None and name not in table:
      raise KeyError(f"logical axis {name!r} has no entry in config.rules; add one (None to replicate)")
    target = table.get(name)
    axes = tuple(a for a in (target if isinstance(target, tuple) else (target,)) if a and a not in used)
    used.update(axes)
    spec.append(axes[0] if len(axes) == 1 else (axes or None))
  return PartitionSpec(*spec)


@dataclasses.dataclass(frozen=True)
class Shard:
  """Constrains an activation to the sharding its logical names map to; the identity without a mesh."""
  mesh: Mesh | None = None
  rules: tuple = ()

  def __call__(self, x: jax.Array, names: tuple[str | None, ...]) -> jax.Array:
    if self.mesh is None:
      return x
    return jax.lax.with_sharding_constraint(x, NamedSharding(self.mesh, self.spec(names, x.shape)))

  def spec(self, names: tuple[str | None, ...], shape: tuple[int, ...]) -> PartitionSpec:
    """The PartitionSpec `names` map to on the mesh, with dims it does not divide left whole (what a
    shard_map's in/out specs need for an array of `shape`)."""
    return fit_spec(logical_to_spec(names, self.rules), shape, self.mesh)


def fit_spec(spec: PartitionSpec, shape: tuple[int, ...], mesh: Mesh) -> PartitionSpec:
  """`spec` with dims the mesh axes do not divide left unsplit (e.g. a batch of 1 when sampling)."""
  def axes_size(axes):
    return math.prod(mesh.shape[a] for a in (axes if isinstance(axes, tuple) else (axes,)))
  return PartitionSpec(*(axes if axes is None or size % axes_size(axes) == 0 else None
                         for axes, size in zip(spec, shape)))


def batch_sharding(mesh: Mesh, rules) -> NamedSharding:
  """Sharding of every batch array, whatever its rank: rows over the data-parallel axes, the rest whole."""
  return NamedSharding(mesh, logical_to_spec(("batch",), rules))


def replicated(mesh: Mesh) -> NamedSharding:
  """Whole on every device: scalars, metrics, small state."""
  return NamedSharding(mesh, PartitionSpec())


def replicated_fraction(shapes_tree, shardings_tree) -> float:
  """Share of parameter elements stored whole on every device (a guard against silent replication)."""
  total = replicated_count = 0
  for shape, sharding in zip(jax.tree.leaves(shapes_tree), jax.tree.leaves(shardings_tree)):
    size = math.prod(shape.shape)
    total += size
    if sharding.is_fully_replicated:
      replicated_count += size
  return replicated_count / max(total, 1)


def process_rows(batch_sharding: NamedSharding, batch_size: int) -> tuple[int, int]:
  """The rows [start, stop) of a global batch that this process's devices hold (what its loader reads)."""
  indices = batch_sharding.addressable_devices_indices_map((batch_size,)).values()
  ranges = sorted({index[0].indices(batch_size)[:2] for index in indices})
  if any(stop != next_start for (_, stop), (next_start, _) in zip(ranges, ranges[1:])):
    raise ValueError(f"this process's devices hold the batch rows {ranges}, not one block; build the mesh "
                     f"from jax.devices() in order so that each process holds one block of rows")
  return ranges[0][0], ranges[-1][1]
