"""DPO of the quickstart SFT model on math preference pairs: correct versus wrong worked solutions.

    lmjax dpo --config configs/dpo_quickstart.py --workdir runs/quickstart_dpo \
        --config.dpo.base_workdir=runs/quickstart_sft   [--config.dpo.loss=ipo|simpo|orpo]

The reward model's pairs (configs/rm_quickstart.py) trained into the policy itself, against the SFT model's
log-probs scored once before training. Hardware: 2 CPU cores, a few minutes. Expect held-out preference
accuracy (val_accuracy, 0.5 at the start by construction) well above 0.5, with a positive val_margin.
"""
from configs import quickstart


def get_config():
  config = quickstart.get_config()
  config.dpo.math_problems = 2000  # one pair per problem: a correct worked solution vs a wrong one
  config.train.update(steps=150, batch_size=8, seq_len=256)
  config.optim.update(lr=1e-4, weight_decay=0.0)  # small steps away from the reference, as DPO recipes take
  config.schedule.warmup_steps = 10
  config.checkpoint.every_steps = 50
  config.eval.update(every_steps=50, batches=24)  # all ~190 held-out pairs
  return config
