"""The eval step is micro-batched like the train step: the same sums, a fraction of the memory."""
import jax
import numpy as np

from lmjax import losses
from lmjax.train.plan import compiled
from lmjax.train.setup import build_train_setup
from lmjax.train.step import make_eval_step
from tests.conftest import tiny_config


def test_a_micro_batched_eval_step_gives_the_same_sums_in_less_memory():
  config = tiny_config()
  config.train.update(batch_size=16, seq_len=128)
  setup = build_train_setup(config, devices=jax.devices()[:1])
  params = setup.init().params
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, config.model.vocab_size, (16, 129))
  batch = {"tokens": tokens[:, :-1], "targets": tokens[:, 1:], "loss_mask": np.ones((16, 128), np.int32),
           "positions": np.tile(np.arange(128), (16, 1)), "segment_ids": np.ones((16, 128), np.int32)}
  shapes = compiled.abstract_batch(config, setup.batch_sharding)
  results, temporaries = [], []
  for micro_batches in (1, 4):
    step = make_eval_step(setup.graphdef, losses.next_token, setup.shardings.params,
                          batch_sharding=setup.batch_sharding, micro_batches=micro_batches)
    results.append(jax.device_get(step(params, batch)))
    temporaries.append(step.lower(setup.abstract_state.params, shapes).compile().memory_analysis().temp_size_in_bytes)
  for whole, micro in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1])):
    np.testing.assert_allclose(micro, whole, rtol=1e-5)
  assert temporaries[1] < 0.5 * temporaries[0], temporaries
