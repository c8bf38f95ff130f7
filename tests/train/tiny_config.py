"""The tests' tiny pretraining run (16 steps of a 2-layer, 64-wide model), for the CLI tests.

    lmjax pretrain --config tests/train/tiny_config.py --workdir DIR --config.data.tokens_dir=...
"""
from configs import base


def get_config():
  config = base.get_config()
  config.model.update(vocab_size=1024, num_layers=2, embed_dim=64, num_heads=4, num_kv_heads=2, mlp_dim=128)
  config.train.update(steps=16, batch_size=8, seq_len=64)
  config.optim.lr = 1e-2
  config.schedule.warmup_steps = 2
  config.checkpoint.update(every_steps=4, keep=2)
  config.eval.update(every_steps=4, batches=2)
  config.data.prefetch = 2
  config.log.tensorboard = True
  return config
