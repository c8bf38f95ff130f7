"""A ~125M-parameter Llama-shaped model (GPT-3 Small's width and depth), for a single GPU/TPU host.

    lmjax pretrain --config configs/llama_125m.py --workdir runs/125m --config.data.tokens_dir=...

Hardware: one accelerator host (8 chips, FSDP). Expect ~3.3 validation loss after ~10B FineWeb tokens.
Scanned layers with full remat: `lmjax plan --config configs/llama_125m.py --devices 8 --chip h100` compiles
it to ~27 GiB per chip; on 16 GiB chips (v5e) add --config.train.grad_accum_steps=2.
"""
from configs import base


def get_config():
  config = base.get_config()
  config.hardware.update(chip="h100", devices=8)
  config.runtime.compilation_cache_dir = "~/.cache/lmjax/xla"  # minutes of compile on accelerators
  config.model.update(base.model_shape(12, aspect_ratio=64, head_dim=64, kv_group=4))
  config.model.update(vocab_size=32_768, tie_embeddings=True, dtype="bfloat16")
  config.model.update(scan_layers=True, remat="full")
  config.train.update(steps=20_000, batch_size=256, seq_len=2048)
  config.data.streams = 8  # a multiple of the hosts it runs on (one 8×H100 host; up to 8 hosts)
  config.optim.lr = 6e-4
  config.schedule.warmup_steps = 700
  config.checkpoint.every_steps = 1000
  config.eval.every_steps = 500
  return config
