"""A chain config's training stages for `lmjax plan`: SFT's, the reward model's, DPO's and RL's steps, each
compiled on the stage's own config."""
from lmjax.train.plan.compiled import eval_step_bytes, measure_memory, rollout_bytes, score_step_bytes


def is_chain_config(config) -> bool:
  """A config made for `lmjax run` (it sets a post-training stage's own fields, config.stage.<sft|rm|rl|dpo>):
  plan every training stage it runs."""
  return any(config.stage.get(name) for name in ("sft", "rm", "rl", "dpo"))


def chain_stage_steps(config, devices) -> list[tuple[str, str, int]]:
  """(stage, step, bytes per device) of SFT's, the reward model's and DPO's train and eval steps, and RL's policy
  step, its scoring pass (rl.score_batch rows at a time) and its rollout program, each on the stage's own
  config (config.stage.<name> applied)."""
  from lmjax.chain.stages import chain_stages, stage_config
  from lmjax.rl.settings import policy_loss
  from lmjax.train.reward_model import reward_loss
  losses_of = {"sft": lambda c: "next_token", "rm": lambda c: reward_loss(c.rm.logprob_weight)[0],
               "rl": lambda c: policy_loss(c.rl)[0], "dpo": lambda c: c.dpo.loss}
  out = []
  for stage in (s for s in chain_stages(config) if s in losses_of):
    stage_cfg = stage_config(config, stage)
    stage_cfg.train.loss = losses_of[stage](stage_cfg)
    scoring = ("score", score_step_bytes) if stage == "rl" else ("eval", eval_step_bytes)
    out += [(stage, "train", measure_memory(stage_cfg, devices).total),
            (stage, scoring[0], scoring[1](stage_cfg, devices))]
    if stage == "rl":
      out.append((stage, "rollout", rollout_bytes(stage_cfg, devices[0])))
  return out
