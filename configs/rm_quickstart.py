"""A reward model on the quickstart SFT model: correct versus wrong worked math solutions.

    lmjax rm --config configs/rm_quickstart.py --workdir runs/quickstart_rm \
        --config.rm.base_workdir=runs/quickstart_sft

Hardware: 2 CPU cores, a few minutes. Expect held-out pairwise accuracy well above 0.5.
"""
from configs import quickstart


def get_config():
  config = quickstart.get_config()
  config.rm.math_problems = 2000  # one pair per problem: a correct worked solution vs a wrong one
  config.train.update(steps=150, batch_size=8, seq_len=256)
  config.optim.lr = 5e-4
  config.schedule.warmup_steps = 10
  config.checkpoint.every_steps = 50
  config.eval.update(every_steps=50, batches=24)  # all ~190 held-out pairs: 4 batches gave ±9% noise
  return config
