"""Orbax checkpoints of the TrainState plus the data iterator's position, restorable onto any mesh."""
import jax
import orbax.checkpoint as ocp

from lmjax import fs


def make_manager(directory: str, *, keep: int) -> ocp.CheckpointManager:
  """A manager of WORKDIR/checkpoints/<step>/{state,data}, keeping the `keep` most recent; `directory` may be
  a local path, a file:// or a gs:// URL."""
  options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
  return ocp.CheckpointManager(fs.path(fs.absolute(directory)), options=options, item_names=("state", "data"))


def save(manager: ocp.CheckpointManager, step: int, state, data_state: dict) -> None:
  """Saves asynchronously; orbax writes under a temporary name, so a killed save never looks complete."""
  manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                             data=ocp.args.JsonSave(data_state)))


def _target(abstract_tree, shardings):
  return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract_tree, shardings)


def restore(manager: ocp.CheckpointManager, step: int, abstract_state, shardings):
  """(state, data_state) of `step`, each array placed directly into its sharding in `shardings`."""
  restored = manager.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(_target(abstract_state, shardings)), data=ocp.args.JsonRestore()))
  return restored.state, restored.data


def restore_params(manager: ocp.CheckpointManager, step: int, abstract_params, shardings):
  """The parameters of `step` alone, placed into `shardings`: the optimizer state and data position are
  never read (orbax's partial restore of the state item), so inference needs no optimizer."""
  target = {"params": _target(abstract_params, shardings)}
  restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
      item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target), partial_restore=True)))
  return restored.state["params"]
