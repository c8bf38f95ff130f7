"""SFT of the quickstart model: real chatterbot dialogues, generated math word problems solved with the
calculator tool, and identity conversations, mixed by weight.

    lmjax sft --config configs/sft_quickstart.py --workdir runs/quickstart_sft \
        --config.sft.base_workdir=runs/quickstart

Hardware: 2 CPU cores, ~5 minutes. Expect the assistant-token loss to fall below ~1.5 nats.
"""
from configs import quickstart


def get_config():
  config = quickstart.get_config()
  config.sft.mixture.update(file=0.0, chatterbot=1.0, math=4.0, identity=0.2)
  config.sft.update(num_conversations=6000, math_problems=5000)
  config.train.update(steps=400, batch_size=8, seq_len=256)
  config.optim.lr = 1e-3
  config.schedule.warmup_steps = 10
  config.checkpoint.every_steps = 100
  config.eval.update(every_steps=50, batches=4)
  return config
