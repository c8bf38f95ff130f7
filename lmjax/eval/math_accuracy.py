"""Held-out math accuracy of a chat model, exactly as `lmjax rl` measures it, plus its tool-call validity.

The problems are the math task's held-out ones (config.math: levels, heldout_seed), none of them among the
problems the SFT run in the model's lineage trained on; `eval.math_problems` takes the first N of that fixed
list, so a smaller eval is a prefix of a larger one and of RL's. Replies are generated as config.rollout says,
with the calculator, through the inference engine (`lmjax.rl.heldout`, no training code).
"""
from lmjax.eval import model_run
from lmjax.eval.tool_calls import tool_call_stats
from lmjax.infer.tools import make_tools
from lmjax.rl import math_task
from lmjax.rl.heldout import heldout_accuracy, heldout_replies
from lmjax.rl.replies import ReplySampler


def heldout_task(config, sft_config) -> math_task.MathTask:
  """The first eval.math_problems held-out problems of the math task (no training problems)."""
  return math_task.make_math_task(config.math, heldout_problems=config.eval.math_problems, sft_config=sft_config)


def evaluate_math(config, run) -> dict:
  """`math_pass1` (mean accuracy of k samples at rollout.temperature), `math_pass_at_k` (any of the k right),
  `math_greedy`, `math_k`, `math_problems`, per level `math_pass1_level<L>` and `math_greedy_level<L>` when
  config.math.levels mixes several, and the tool-call stats of all those replies."""
  task, samples = heldout_task(config, model_run.sft_config(run.lineage)), config.eval.math_samples
  loaded = run.loaded
  sampler = ReplySampler(loaded.graphdef, loaded.tokenizer, config.rollout, make_tools())
  greedy, sampled = heldout_replies(sampler, loaded.params, task.heldout, samples)
  accuracy = heldout_accuracy(task.heldout, greedy, sampled, loaded.tokenizer)
  messages = [r.message(loaded.tokenizer) for r in greedy + sampled]
  per_level = {key.replace("heldout_", "math_"): value for key, value in accuracy.items() if "_level" in key}
  return {"math_pass1": accuracy["heldout_pass1"], "math_pass_at_k": accuracy["heldout_pass_at_g"],
          "math_greedy": accuracy["heldout_greedy"], "math_k": samples,
          "math_problems": len(task.heldout), **per_level, **tool_call_stats(messages)}
