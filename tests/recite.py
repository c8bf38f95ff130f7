"""Teaching a tiny model to recite conversations: the fixture behind tests that need a model which answers
exactly as told (the probe, the evaluations)."""
import jax
import numpy as np

from lmjax import losses
from lmjax.data.chat_pipeline import render_examples
from lmjax.train.setup import build_train_setup
from lmjax.train.step import make_train_step

BATCH_KEYS = ("tokens", "targets", "loss_mask", "positions", "segment_ids")


def conversation_batch(conversations, tokenizer, rows: int, seq_len: int) -> dict:
  """One row per conversation (assistant-only loss mask), zero-padded to [rows, seq_len]."""
  batch = {k: np.zeros((rows, seq_len), np.float32 if k == "loss_mask" else np.int32) for k in BATCH_KEYS}
  for row, example in enumerate(render_examples(conversations, tokenizer, seq_len=seq_len)):
    n = len(example["tokens"])
    assert n < seq_len, "a conversation does not fit the row"
    for key in ("tokens", "targets", "loss_mask"):
      batch[key][row, :n] = example[key]
    batch["positions"][row, :n], batch["segment_ids"][row, :n] = np.arange(n), 1
  return batch


def recite(config, tokenizer, conversations, *, max_loss: float):
  """(TrainSetup, state) of config's model after config.train.steps full-batch steps on the conversations
  (one device; rows = train.batch_size); asserts the final loss fell below max_loss."""
  config.mesh.fsdp = 1
  setup = build_train_setup(config, devices=jax.devices()[:1])
  batch = conversation_batch(conversations, tokenizer, config.train.batch_size, config.train.seq_len)
  step = make_train_step(setup.graphdef, losses.next_token, setup.optimizer, setup.shardings,
                         batch_sharding=setup.batch_sharding)
  state, batch = setup.init(), jax.device_put(batch, setup.batch_sharding)
  for _ in range(config.train.steps):
    state, metrics = step(state, batch, jax.random.key(0))
  assert float(metrics["loss"]) < max_loss, float(metrics["loss"])
  return setup, state
