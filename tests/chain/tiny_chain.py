"""The tests' tiny chain: every stage of configs/speedrun_cpu.py at sizes that run in about a minute on CPU.

    lmjax run --config tests/chain/tiny_chain.py --workdir DIR
"""
import os

from configs import speedrun_cpu

CORPUS = os.path.join(speedrun_cpu.ASSETS, "corpus")


def get_config():
  config = speedrun_cpu.get_config()
  config.chain.corpus = f"{CORPUS}/botchan.jsonl.gz,{CORPUS}/fortunes_de_es.jsonl.gz"
  config.model.update(vocab_size=1024, num_layers=2, embed_dim=64, num_heads=4, num_kv_heads=2, mlp_dim=128)
  config.tokenizer.input_sentence_size = 0
  config.data.update(num_shards=2, val_fraction=0.05, workers=1, prefetch=0)
  config.train.update(steps=8, batch_size=8, seq_len=64)
  config.checkpoint.every_steps = 4
  config.eval.update(every_steps=4, batches=2)
  config.schedule.warmup_steps = 2
  config.log.tensorboard = False
  config.sft.update(num_conversations=200, math_problems=100, grounding_examples=20)
  config.probe.update(questions=8, heldout_questions=4, samples_per_question=2, max_new_tokens=8, batch_size=16)
  config.stage.sft = dict(train=dict(steps=6, seq_len=128), optim=dict(lr=1e-3), schedule=dict(warmup_steps=2))
  config.rm.math_problems = 60
  config.rm.val_fraction = 0.25
  config.stage.rm = dict(train=dict(steps=4, seq_len=192), optim=dict(lr=1e-3), schedule=dict(warmup_steps=1),
                         eval=dict(every_steps=4, batches=1))
  config.dpo.update(math_problems=60, val_fraction=0.25)
  config.stage.dpo = dict(train=dict(steps=4, seq_len=192), optim=dict(lr=1e-3), schedule=dict(warmup_steps=1),
                          eval=dict(every_steps=4, batches=1))
  config.rl.update(iterations=1, prompts_per_iteration=4, group_size=4, heldout_problems=4, eval_samples=2,
                   eval_every=1, train_problems=64)
  config.rollout.update(max_new_tokens=16, max_reply_tokens=32, max_tool_calls=1, batch=16)
  config.stage.rl = dict(train=dict(batch_size=8, seq_len=128), optim=dict(lr=1e-3, weight_decay=0.0),
                         schedule=dict(warmup_steps=0, decay="constant"))
  config.eval.update(math_problems=4, math_samples=2, abstention_questions=4, loss_batches=2)
  return config
