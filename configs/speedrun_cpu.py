"""The whole chain on 2 CPU cores from data shipped in the repo: raw web pages to an RL-tuned assistant.

    lmjax run --config configs/speedrun_cpu.py --workdir runs/speedrun

clean (the shipped WARC of Python-docs pages) -> tokenizer and tokenize (the cleaned pages plus the shipped
corpus of books, fortunes and docs) -> pretrain the tiny model (300 steps) -> SFT on chatterbot, math with the
calculator (in two wordings), identity, answer-from-the-prompt and "I don't know" conversations (800 steps;
the knowledge probe of the pretrained model decides which Bible questions get "I don't know") -> reward model
on math preference pairs -> RL on level-1 math problems in a third wording -> evaluation of the base, SFT and
RL models on held-out problems in a fourth -> runs/speedrun/report.md.
Hardware: 2 CPU cores: 20.1, 21.5 and 23.4 minutes of stage time for seeds 0, 1 and 2 (2026-12-08; SFT
412-535 s and RL 334-429 s of it).
README "Does every stage help, on every seed?" has the numbers.
"""
import os

import lmjax
from configs import quickstart, rl_quickstart

ASSETS = os.path.join(os.path.dirname(lmjax.__file__), "assets")


def get_config():
  config = quickstart.get_config()  # the tiny model, pretraining on 300 batches of 8 × 256 tokens
  config.chain.web_input = os.path.join(ASSETS, "web", "*.warc.gz")
  config.chain.corpus = os.path.join(ASSETS, "corpus", "*.jsonl.gz")
  config.data.documents = ""  # wired by the chain: the cleaned pages plus chain.corpus

  # The knowledge probe of the pretrained model feeds SFT "I don't know" for what it does not know ("idk");
  # "context" teaches answering from the prompt, "unknown" abstaining on invented entities.
  config.probe.update(questions=200, heldout_questions=100, samples_per_question=4, max_new_tokens=16)
  config.sft.mixture.update(file=0.0, chatterbot=1.0, math=4.0, identity=0.2, idk=0.3, context=0.5, unknown=0.3)
  config.sft.update(num_conversations=6000, math_problems=5000)
  # Worked examples in two wordings; RL practises on a third that SFT never saw, and the held-out problems are
  # asked in a fourth that no stage trains on (math_wordings.WORDINGS; README "Does every stage help").
  config.sft.math_wordings = (0, 1)
  config.math.update(wordings=(2,), heldout_wordings=(3,))
  # 800 steps: at 400 validation loss was still falling and the held-out math flipped with the seed (README).
  config.stage.sft = dict(train=dict(steps=800), optim=dict(lr=1e-3), schedule=dict(warmup_steps=10))

  # >= 100 held-out pairs of each kind (144, 144, 112); the score adds the reply's mean log-prob (README).
  config.rm.update(math_problems=3000, val_fraction=0.15, logprob_weight=1.0)
  config.stage.rm = dict(train=dict(steps=100), optim=dict(lr=1e-4), schedule=dict(warmup_steps=10),
                         eval=dict(every_steps=50, batches=24))
  # With --config.chain.preference=dpo: DPO on the reward model's pairs in place of rm -> rl (not measured yet).
  config.dpo.math_problems = 2000
  config.stage.dpo = dict(train=dict(steps=100), optim=dict(lr=1e-4, weight_decay=0.0),
                          schedule=dict(warmup_steps=10), eval=dict(every_steps=50, batches=24))

  recipe = rl_quickstart.get_config()  # the RL recipe of README "Post-training", shortened to 8 iterations
  config.rl.update(recipe.rl.to_dict())
  config.rollout.update(recipe.rollout.to_dict())  # RL's rollouts and the evaluations generate alike
  config.rl.update(iterations=8, eval_every=8, heldout_problems=64, eval_samples=4)
  # Groups whose replies all got the same reward carry no advantage: training only on the others gave the same
  # held-out figures over seeds 0-2 with a fraction of the optimizer steps (README "Does every stage help").
  config.rl.skip_uniform_groups = True
  # seq_len 128: wording 2's prompts reach 42 tokens, and a reply may take 72.
  config.stage.rl = dict(train=dict(batch_size=recipe.train.batch_size, seq_len=128),
                         optim=recipe.optim.to_dict(), schedule=recipe.schedule.to_dict())
  # 128 held-out problems x 8 samples (RL's own held-out check is the first 64 of them x 4); 64 abstention
  # questions of each sort.
  config.eval.update(math_problems=128, math_samples=8, abstention_questions=64)
  return config
