"""The README's quickstart: the tiny model on the corpus shipped in lmjax/assets/corpus (~7 MB of text).

    lmjax tokenizer --config configs/quickstart.py --workdir runs/quickstart
    lmjax tokenize  --config configs/quickstart.py --workdir runs/quickstart
    lmjax pretrain  --config configs/quickstart.py --workdir runs/quickstart
    lmjax sample    --workdir runs/quickstart --prompt "The meaning of life"

Hardware: 2 CPU cores. Expect ~6.5 minutes of training (300 steps of 8 × 256 tokens); validation loss
falls from ~9.0 nats/token (uniform over 8,192 tokens) to ~5.7 (measured: 5.67, 2.38 bits per byte).
"""
import os

import lmjax
from configs import base

CORPUS = os.path.join(os.path.dirname(lmjax.__file__), "assets", "corpus", "*.jsonl.gz")


def get_config():
  config = base.get_config()
  config.data.documents = CORPUS
  config.train.steps = 300
  config.train.batch_size = 8
  config.optim.lr = 2e-3  # ends a little lower than 3e-3 at this small batch
  config.schedule.warmup_steps = 30
  config.checkpoint.every_steps = 100
  config.eval.every_steps = 50
  return config
