"""Replies to math problems through the inference engine, as RL's rollouts and its held-out evaluation (and
`lmjax eval`) sample them: the chat protocol, the tools, config.rollout's budgets and slots."""
import dataclasses

from lmjax.infer.engine import Reply, rollout_engine
from lmjax.rl import math_task


@dataclasses.dataclass(frozen=True)
class ReplySampler:
  """What generating replies needs besides the parameters: a plain transformer's graph, the tokenizer, the
  rollout settings, the tools and the engine's cache length (fixed per run, so its programs compile once)."""
  graphdef: object
  tokenizer: object
  rollout: object  # config.rollout
  tools: dict
  length: int | None = None

  def replies(self, params, problems, *, samples: int, temperature: float, seed: int) -> list[Reply]:
    """`samples` replies per problem (problem-major); reply i samples with seed (seed · 1,000,003 + i) mod 2^32.
    A policy with a value head generates with its backbone."""
    params = params["backbone"] if "backbone" in params else params
    prompts = [math_task.prompt_ids(p, self.tokenizer) for p in problems for _ in range(samples)]
    engine = rollout_engine(self.graphdef, params, self.tokenizer, self.rollout, tools=self.tools,
                            temperature=temperature, length=self.length)
    return engine.generate(prompts, [(seed * 1_000_003 + i) % 2**32 for i in range(len(prompts))])
