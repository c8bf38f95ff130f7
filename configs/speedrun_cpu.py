"""The whole chain on 2 CPU cores from data shipped in the repo: raw web pages to an RL-tuned assistant.

    lmjax run --config configs/speedrun_cpu.py --workdir runs/speedrun

clean (the shipped WARC of Python-docs pages) -> tokenizer and tokenize (the cleaned pages plus the shipped
corpus of books, fortunes and docs) -> pretrain the tiny model (300 steps) -> SFT on chatterbot, math with the
calculator and identity conversations (400 steps) -> reward model on math preference pairs -> RL on level-1
math problems -> evaluation of the base, SFT and RL models -> runs/speedrun/report.md.
Hardware: 2 CPU cores, ~30 minutes. README "The speedrun" has the measured report card.
"""
import os

import lmjax
from configs import quickstart

ASSETS = os.path.join(os.path.dirname(lmjax.__file__), "assets")


def get_config():
  config = quickstart.get_config()  # the tiny model, pretraining on 300 batches of 8 × 256 tokens
  config.chain.web_input = os.path.join(ASSETS, "web", "*.warc.gz")
  config.chain.corpus = os.path.join(ASSETS, "corpus", "*.jsonl.gz")
  config.data.documents = ""  # wired by the chain: the cleaned pages plus chain.corpus

  config.sft.mixture.update(file=0.0, chatterbot=1.0, math=4.0, identity=0.2)
  config.sft.update(num_conversations=6000, math_problems=5000)
  config.stage.sft = dict(train=dict(steps=400), optim=dict(lr=1e-3), schedule=dict(warmup_steps=10))

  config.rm.math_problems = 2000
  config.stage.rm = dict(train=dict(steps=100), optim=dict(lr=5e-4), schedule=dict(warmup_steps=10),
                         eval=dict(every_steps=50, batches=24))

  # RL as in configs/rl_quickstart.py (SGD, the correct replies reinforced, 4 epochs per iteration), 8 iterations.
  config.rl.update(iterations=8, prompts_per_iteration=32, group_size=8, epochs=4, kl_coef=0.0,
                   advantage="group_positive", max_new_tokens=48, max_reply_tokens=72, rollout_batch=256,
                   eval_every=8, heldout_problems=64, eval_samples=4)
  config.stage.rl = dict(train=dict(batch_size=64, seq_len=112), optim=dict(name="sgd", lr=0.1, weight_decay=0.0),
                         schedule=dict(warmup_steps=0, decay="constant"))
  config.eval.update(math_problems=64, math_samples=4, abstention_questions=32)  # RL's first 64 held-out
  return config
