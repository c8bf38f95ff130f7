"""The speedrun's chain at pod scale: the same stages and code as speedrun_cpu, a ~1B model on ~20B tokens.

    lmjax run --config configs/speedrun_pod.py --workdir /mnt/runs/speedrun_pod \
        --config.chain.web_input='/mnt/commoncrawl/CC-MAIN-2024-10/segments/*/warc/*.warc.gz'

Every host runs the same command (multi-host flags: README "Multi-host"); the stage folders must be on a
filesystem all hosts share. Data paths replace the shipped samples: raw Common Crawl WARC files (about
12,000 of one dump's ~90,000 files: at FineWeb's yield of ~1.7M kept tokens per WARC file that is ~20B tokens,
the Chinchilla budget of 20 tokens per parameter) and no curated corpus.

Memory: scanned layers, full remat, 2 micro-batches of 256 rows. `lmjax plan --config configs/speedrun_pod.py`
(its declared hardware, 8 × H100) compiles every stage's steps, per chip of 80 GiB: pretrain train 35.3 /
eval 9.1, SFT 11.5 / 2.9, RM 10.8 / 2.6, RL policy step 28.0, scoring 7.9, and RL's rollout engine (one
device, rollout.batch 256 slots of 1,088 cached tokens, 256 decode steps a call) 29.9 GiB (2026-12-03; the
static batch it replaced needed 56.4 GiB, and 421 GiB at 2,048 rows).

Expected cost (estimates, not measurements; check `lmjax plan` for the memory of your mesh):
- clean: ~420M pages at ~50 pages/s per core (the shipped WARC runs at ~14 pages/s per core on this
  2-core machine including start-up) is ~2,300 core-hours, e.g. 64 hosts × 32 cores for ~1.1 hours.
- pretrain: 6 · 1.0e9 parameters · 20e9 tokens = 1.2e20 FLOPs; on a TPU v5p-64 (64 chips × 459 TFLOP/s
  bf16) at 40% MFU that is ~2.8 hours (~180 chip-hours); on 8 × H100 (989 TFLOP/s) at 40%, ~10.5 hours.
- SFT, reward model and RL: under 10% of pretraining's FLOPs (SFT 2,000 steps of 128 × 2,048 tokens is
  0.5B tokens; RL 100 iterations of 512 prompts × 16 replies).
"""
from configs import base, speedrun_cpu


def get_config():
  config = speedrun_cpu.get_config()  # the same sources, mixture and stage order
  config.hardware.update(chip="h100", devices=8)
  config.runtime.compilation_cache_dir = "~/.cache/lmjax/xla"  # minutes of compile on accelerators
  config.chain.web_input = ""  # set to a glob of WARC files (see above)
  config.chain.corpus = ""
  config.clean.tasks = 0  # one filter task per input file
  config.model.update(base.model_shape(16))  # 2048 wide, 16 layers, 16 heads, 4 KV heads, MLP 7168
  config.model.update(vocab_size=32_768, dtype="bfloat16", scan_layers=True, remat="full")
  config.tokenizer.input_sentence_size = 20_000_000
  config.tokenizer.num_threads = 32
  config.data.update(num_shards=1024, workers=0, val_fraction=0.001)
  config.train.update(steps=19_000, batch_size=512, seq_len=2048, grad_accum_steps=2)  # 19,000 × 1M ≈ 20B tokens
  config.data.streams = 16  # a multiple of the hosts of a v5p-64 (16) or one 8×H100 host
  config.optim.lr = 3e-4
  config.schedule.warmup_steps = 2000
  config.checkpoint.every_steps = 1000
  config.eval.update(every_steps=1000, batches=16)
  config.sft.update(num_conversations=200_000, math_problems=100_000)
  config.stage.sft = dict(train=dict(steps=2000, batch_size=128), optim=dict(lr=3e-5),
                          schedule=dict(warmup_steps=100))
  config.rm.math_problems = 100_000
  config.stage.rm = dict(train=dict(steps=1000, batch_size=128), optim=dict(lr=1e-5),
                         schedule=dict(warmup_steps=50), eval=dict(every_steps=200, batches=16))
  config.rl.update(iterations=100, prompts_per_iteration=512, group_size=16, eval_every=10,
                   heldout_problems=1024, eval_samples=16)
  config.math.levels = (2,)
  config.rollout.update(batch=256, max_new_tokens=256, max_reply_tokens=512)  # 256 engine slots: 29.9 GiB
  config.stage.rl = dict(train=dict(batch_size=512, seq_len=1024), optim=dict(lr=1e-6, weight_decay=0.0),
                         schedule=dict(warmup_steps=10, decay="constant"))
  return config
