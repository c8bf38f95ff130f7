"""A ~1.1B-parameter Llama-3-shaped model (depth 16 on the Llama-3 dial; Llama 3.2 1B's vocabulary).

    lmjax pretrain --config configs/llama3_1b.py --workdir gs://BUCKET/runs/1b --config.data.tokens_dir=...

Hardware: a TPU v5e-16 or one 8×H100 host, FSDP over all chips. Scanned layers, full remat and 8
micro-batches of 64 rows: `lmjax plan --config configs/llama3_1b.py --devices 16 --chip v5e` compiles it to
~13 GiB per chip (of 16).
"""
from configs import base


def get_config():
  config = base.get_config()
  config.hardware.update(chip="v5e", devices=16)
  config.runtime.compilation_cache_dir = "~/.cache/lmjax/xla"  # minutes of compile on accelerators
  config.model.update(base.model_shape(16))
  config.model.update(vocab_size=128_256, tie_embeddings=True, rope_theta=500_000.0, dtype="bfloat16",
                      scan_layers=True, remat="full")
  config.train.update(steps=50_000, batch_size=512, seq_len=2048, grad_accum_steps=8)
  config.data.streams = 8  # a multiple of the hosts of a v5e-16 (4) or 8×H100 (1): each packs its own rows
  config.optim.lr = 3e-4
  config.schedule.warmup_steps = 2000
  config.checkpoint.every_steps = 1000
  config.eval.every_steps = 1000
  return config
