"""The whole chain on one H100/H200 in about 1¼ hours: a ~150M-parameter model (nanochat's d12 territory).

    lmjax run --config configs/speedrun_gpu.py --workdir runs/speedrun_gpu \
        --config.chain.corpus='/data/fineweb-edu/sample/10BT/*.parquet'

Data: `chain.corpus` is the pretraining text, any documents lmjax reads (.jsonl/.jsonl.gz/.jsonl.zst/.parquet
with a `text` field, e.g. FineWeb-Edu's parquet shards, which are already cleaned); `chain.web_input` is the
shipped WARC sample, whose cleaned pages are mixed in (point it at your own WARC files to clean those). With
neither overridden the shipped corpus makes a smoke test (add --config.model.vocab_size=8192: ~2M tokens of
text are too few for a 32,768-piece tokenizer): every stage runs, on that text repeated.

Shape: 12 layers, 768 wide, 12 heads of 64, 3 KV heads, MLP 2,816, vocab 32,768, untied: 146M parameters.
Pretraining: 3,000 steps of 256 × 2,048 tokens = 1.57B tokens (~10 per parameter) in bf16 with float32
master weights, scanned layers, full remat, 4 micro-batches of 64 rows. Planned to fit:
`lmjax plan --config configs/speedrun_gpu.py` (its declared hardware, one H100) compiles, of 80 GiB: pretrain
train 40.8 / eval 16.9, SFT 12.4 / 4.7, RM 11.7 / 2.9, RL policy step 24.3, scoring 4.6, the rollout engine
(512 slots) 15.1 GiB (2026-12-03; the static batch it replaced: 57.5 GiB).

Expected time per stage on one H100 (estimates from FLOPs at 40% MFU, not measurements; nobody has run this
config on a GPU yet): clean and tokenizer a few minutes of CPU; tokenize ~1.6B tokens, minutes on the
host's cores (not measured at this size); pretrain 5.0e14 model FLOPs per step (5.5e14 compiled, remat
included) × 3,000 steps: ~55 minutes at 50% of the bf16 peak, ~70 at 40% (`lmjax plan` prints the step
time); SFT (600 steps of 64 × 2,048), RM (300 steps) and RL (20 iterations of 128 × 8 rollouts) ~10
minutes; the three evaluations ~3 minutes.
"""
from configs import base, speedrun_cpu


def get_config():
  config = speedrun_cpu.get_config()  # the same stages, mixture and evaluations
  config.hardware.update(chip="h100", devices=1)
  config.runtime.compilation_cache_dir = "~/.cache/lmjax/xla"
  config.model.update(base.model_shape(12, aspect_ratio=64, head_dim=64))
  config.model.update(vocab_size=32_768, dtype="bfloat16", scan_layers=True, remat="full")
  config.tokenizer.update(input_sentence_size=5_000_000, num_threads=16)
  config.data.update(num_shards=64, workers=0, val_fraction=0.002)
  config.train.update(steps=3000, batch_size=256, seq_len=2048, grad_accum_steps=4)
  config.optim.lr = 6e-4
  config.schedule.warmup_steps = 200
  config.checkpoint.every_steps = 500
  config.eval.update(every_steps=500, batches=8)
  config.log.every_steps = 10
  config.sft.update(num_conversations=50_000, math_problems=40_000)
  config.stage.sft = dict(train=dict(steps=600, batch_size=64), optim=dict(lr=1e-4),
                          schedule=dict(warmup_steps=30))
  config.rm.math_problems = 20_000
  config.stage.rm = dict(train=dict(steps=300, batch_size=64), optim=dict(lr=3e-5),
                         schedule=dict(warmup_steps=20), eval=dict(every_steps=100, batches=8))
  config.rl.update(iterations=20, prompts_per_iteration=128, group_size=8, eval_every=5,
                   heldout_problems=256, eval_samples=8)
  config.rollout.update(batch=512)
  config.stage.rl = dict(train=dict(batch_size=128, seq_len=1024), optim=dict(lr=2e-6, weight_decay=0.0),
                         schedule=dict(warmup_steps=5, decay="constant"))
  config.eval.update(math_problems=256, math_samples=8, abstention_questions=128)
  return config
