"""Sharding: the same config and seed give the same losses on 1 device and on 8 (2×2×2 and pure FSDP);
parameters are born sharded; the replication guard catches rules that leave the model whole."""
import dataclasses

import jax
import numpy as np
import pytest

from lmjax import losses
from lmjax.config import ConfigError
from lmjax.sharding import device_grid, logical_to_spec, process_rows_contiguous
from lmjax.train.setup import build_train_setup
from lmjax.train.step import make_train_step
from tests.conftest import tiny_config


def _losses(config, devices, steps=4, grad_accum_steps=1):
  setup = build_train_setup(config, devices=devices)
  state = setup.init()
  step = make_train_step(setup.graphdef, losses.next_token, setup.optimizer, setup.shardings,
                         batch_sharding=setup.batch_sharding, grad_accum_steps=grad_accum_steps,
                         lr_schedule=setup.schedule)
  rng, out = np.random.default_rng(0), []
  b, t = config.train.batch_size, config.train.seq_len
  ids = rng.integers(0, config.model.vocab_size, (b, t + 1), dtype=np.int32)
  segments = np.repeat(np.array([[1] * (t // 2) + [2] * (t - t // 2)], np.int32), b, 0)
  batch = {"tokens": ids[:, :-1], "targets": ids[:, 1:], "segment_ids": segments,
           "positions": np.tile(np.arange(t, dtype=np.int32), (b, 1)), "loss_mask": np.ones((b, t), np.float32)}
  for _ in range(steps):  # the same batch each step, so the loss must fall
    state, metrics = step(state, {k: jax.device_put(v, setup.batch_sharding) for k, v in batch.items()},
                          jax.random.key(0))
    out.append(jax.device_get(metrics))
  return out, setup, state


def _mesh(config, data, fsdp, tensor):
  config.mesh.data, config.mesh.fsdp, config.mesh.tensor = data, fsdp, tensor
  return config


@pytest.fixture(scope="module")
def single_device_losses():
  """The reference every mesh is checked against: 4 steps of the tiny model on one device."""
  return _losses(_mesh(tiny_config(), 1, 1, 1), jax.devices()[:1])[0]


@pytest.mark.parametrize("mesh", [(2, 2, 2), (1, 8, 1)], ids=["data2_fsdp2_tensor2", "fsdp8"])
def test_sharded_losses_equal_single_device_losses(single_device_losses, mesh):
  assert jax.device_count() == 8
  single = single_device_losses
  sharded, setup, state = _losses(_mesh(tiny_config(), *mesh), jax.devices())
  for a, b in zip(single, sharded):
    for key in ("loss", "grad_norm", "param_norm"):
      np.testing.assert_allclose(a[key], b[key], rtol=2e-5)
  assert single[-1]["loss"] < single[0]["loss"]
  q = state.params["blocks"][0]["attn"]["q"][...]
  assert q.sharding.spec == logical_to_spec(("embed", "heads", "head_dim"), setup.mesh and _rules())
  assert len({s.data.shape for s in q.addressable_shards}) == 1 and q.addressable_shards[0].data.size < q.size


def test_scanned_rematerialised_model_shards_like_the_per_layer_one():
  def scanned(config):
    config.model.update(scan_layers=True, remat="full")
    return config
  single, _, _ = _losses(scanned(_mesh(tiny_config(), 1, 1, 1)), jax.devices()[:1], steps=2)
  sharded, setup, state = _losses(scanned(_mesh(tiny_config(), 2, 2, 2)), jax.devices(), steps=2)
  for a, b in zip(single, sharded):
    for key in ("loss", "grad_norm", "param_norm"):
      np.testing.assert_allclose(a[key], b[key], rtol=2e-5)
  q = state.params["blocks"]["attn"]["q"][...]  # [L, d, n, h]: the layer axis whole, the rest as unscanned
  assert tuple(q.sharding.spec) == (None, "fsdp", "tensor", None)
  assert setup.replicated_fraction < 0.01


def _rules():
  from lmjax.sharding import rules_from_config
  return rules_from_config(tiny_config().rules)


def test_gradient_accumulation_equals_the_whole_batch():
  whole, _, _ = _losses(_mesh(tiny_config(), 1, 2, 1), jax.devices()[:2], steps=2)
  accumulated, _, _ = _losses(_mesh(tiny_config(), 1, 2, 1), jax.devices()[:2], steps=2, grad_accum_steps=2)
  for a, b in zip(whole, accumulated):
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
    np.testing.assert_allclose(a["grad_norm"], b["grad_norm"], rtol=1e-4)


def test_replication_guard_rejects_rules_that_shard_nothing():
  config = _mesh(tiny_config(), 1, 8, 1)
  config.rules.embed = None
  config.rules.vocab = None
  config.rules.mlp = None
  with pytest.raises(ConfigError, match="of parameters are replicated"):
    build_train_setup(config, devices=jax.devices())
  assert build_train_setup(_mesh(tiny_config(), 1, 8, 1), devices=jax.devices()).replicated_fraction < 0.01


@dataclasses.dataclass(frozen=True)
class _Device:
  """What the mesh layout reads of a device: its id, process and slice (CPU devices have no slice)."""
  id: int
  process_index: int
  slice_index: int
  platform: str = "cpu"
  device_kind: str = "cpu"


def _ids(grid, field="id"):
  return np.vectorize(lambda d: getattr(d, field))(grid)


def test_across_slices_only_the_data_axis_crosses_between_them():
  devices = [_Device(i, process_index=i % 2, slice_index=i % 2) for i in range(8)]  # listed interleaved
  grid = device_grid((2, 2, 2), devices)
  slices = _ids(grid, "slice_index")
  assert (slices[0] == 0).all() and (slices[1] == 1).all()
  with pytest.raises(ValueError, match="config.mesh.data=1 must be a multiple of the 2 slices"):
    device_grid((1, 4, 2), devices)


def test_a_process_must_hold_one_block_of_batch_rows():
  in_order = np.asarray([_Device(i, i // 4, 0) for i in range(8)], dtype=object).reshape(1, 8, 1)
  interleaved = np.asarray([_Device(i, i % 2, 0) for i in range(8)], dtype=object).reshape(1, 8, 1)
  assert process_rows_contiguous(in_order)
  assert not process_rows_contiguous(interleaved)
  # tensor inside a data-parallel shard may span processes: each process still holds one run of shards
  pairs = np.asarray([_Device(i, i % 2, 0) for i in range(8)], dtype=object).reshape(1, 4, 2)
  assert process_rows_contiguous(pairs)
