"""Llama-3-8B's shape exactly (depth 32 on the Llama-3 dial: 4096 wide, 32 heads, 8 KV heads, MLP 14336).

    lmjax pretrain --config configs/llama3_8b.py --workdir gs://BUCKET/runs/8b \
        --config.data.tokens_dir=... --config.mesh.fsdp=-1 --config.mesh.tensor=4

Hardware: a TPU v5p-256 pod slice (or 32 × 8×H100), FSDP × tensor parallelism. Scanned layers with full
remat and 2 micro-batches of 512 rows: `lmjax plan --config configs/llama3_8b.py` (its declared hardware)
compiles the train step to 43.5 GiB per chip of 95 and the eval step to 15.9 GiB (2026-12-03; XLA:CPU's
figures with blocked attention: one layer's attention is 29.1 GiB that way against 2.1 GiB with splash,
which TPU runs). With tensor=4 (fsdp=64) each chip holds 4× the rows: plan it with --mesh data=1,fsdp=64,tensor=4
and raise --config.train.grad_accum_steps until it fits.
"""
from configs import base


def get_config():
  config = base.get_config()
  config.hardware.update(chip="v5p", devices=256)
  config.runtime.compilation_cache_dir = "~/.cache/lmjax/xla"  # minutes of compile on accelerators
  config.model.update(base.model_shape(32))
  config.model.update(vocab_size=128_256, rope_theta=500_000.0, dtype="bfloat16")
  config.model.update(scan_layers=True, remat="full")
  config.train.update(steps=100_000, batch_size=1024, seq_len=8192, grad_accum_steps=2)
  config.data.streams = 64  # one packing stream per host of a v5p-256 (64 hosts × 4 chips)
  config.optim.lr = 3e-4
  config.schedule.warmup_steps = 2000
  config.checkpoint.every_steps = 500
  config.eval.every_steps = 1000
  return config
