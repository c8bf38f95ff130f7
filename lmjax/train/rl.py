"""`lmjax rl`: reinforcement learning on verifiable math word problems, through the one train step.

    lmjax rl --config configs/rl_quickstart.py --workdir runs/quickstart_rl \
        --config.rl.base_workdir=runs/quickstart_sft

Each iteration samples `prompts_per_iteration` problems and `group_size` replies to each with the tool-using
rollout engine (calculator calls run; their outputs are never trained on), rewards a reply 1 if its final
answer is right, computes advantages — group-relative (GRPO-style, no critic) or GAE with a value head — and
runs `epochs` passes of minibatches through `make_train_step` with the `ppo_clip` (or `ppo_clip_value`)
loss. The frozen base run is the KL reference. Every iteration is checkpointed; rerunning resumes exactly.
"""
import dataclasses
import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from lmjax import fs, losses
from lmjax.config import ConfigError
from lmjax.infer.sampler import SamplingParams
from lmjax.infer.tools import make_tools
from lmjax.rl import advantages as advantage_estimators
from lmjax.rl import experience, math_task
from lmjax.rl.rollout import rollout
from lmjax.train import checkpoint
from lmjax.train.base_run import carry_tokenizer, fresh_state, load_base_run, with_backbone
from lmjax.train.loop import NonFiniteLossError, global_batch
from lmjax.train.metrics import MetricsLog
from lmjax.train.setup import build_train_setup, tokenizer_path
from lmjax.train.step import make_train_step

ADVANTAGES = tuple(advantage_estimators.ESTIMATORS)
REWARDS = ("verifier", "reward_model")


def rows_per_iteration(rl_config) -> int:
  return rl_config.prompts_per_iteration * rl_config.group_size


def score_batch(config) -> int:
  """Rows per scoring pass (the policy's and reference's log-probs, the critic's values, the reward model's
  scores): rl.score_batch, or the train step's micro-batch, whose full-vocabulary logits already fit."""
  return config.rl.score_batch or config.train.batch_size // config.train.grad_accum_steps


def total_updates(config) -> int:
  """Optimizer steps of the whole run: iterations × epochs × minibatches per iteration."""
  r = config.rl
  return r.iterations * r.epochs * (rows_per_iteration(r) // config.train.batch_size)


def check_rl_config(config) -> None:
  """Raises ConfigError for RL settings that cannot work, saying what to change."""
  r, t = config.rl, config.train
  checks = [
      (r.advantage in ADVANTAGES, f"config.rl.advantage={r.advantage!r}; use one of {', '.join(ADVANTAGES)}"),
      (r.reward in REWARDS, f"config.rl.reward={r.reward!r}; use one of {', '.join(REWARDS)}"),
      (r.reward != "reward_model" or r.reward_model_workdir,
       "config.rl.reward='reward_model' needs config.rl.reward_model_workdir (an `lmjax rm` run)"),
      (r.group_size >= 2 or r.advantage == "gae",
       f"config.rl.group_size={r.group_size}: group-relative advantages need at least 2 samples per prompt"),
      (rows_per_iteration(r) % t.batch_size == 0,
       f"prompts_per_iteration×group_size={rows_per_iteration(r)} rollouts must split into minibatches of "
       f"train.batch_size={t.batch_size}; change one of them"),
      (r.score_batch >= 0 and rows_per_iteration(r) % score_batch(config) == 0,
       f"config.rl.score_batch={r.score_batch} must be 0 (the train micro-batch) or divide the "
       f"{rows_per_iteration(r)} rollouts of an iteration"),
      (r.iterations > 0 and r.epochs > 0, "config.rl.iterations and config.rl.epochs must be positive"),
      (config.rollout.max_reply_tokens < t.seq_len,
       f"config.rollout.max_reply_tokens={config.rollout.max_reply_tokens} leaves no room for the prompt in "
       f"train.seq_len={t.seq_len}"),
  ]
  for ok, message in checks:
    if not ok:
      raise ConfigError(message)


def with_derived_steps(config):
  """A copy of the config whose train.steps is the run's optimizer steps (the LR schedule's length)."""
  config = config.copy_and_resolve_references()
  config.train.steps = total_updates(config)
  return config


def policy_loss(rl_config):
  """(loss name, loss function with its hyperparameters bound): `ppo_clip`, or `ppo_clip_value` with GAE."""
  r = rl_config
  bound = dict(clip_eps=r.clip_eps, kl_coef=r.kl_coef, entropy_coef=r.entropy_coef)
  if r.advantage == "gae":
    bound |= dict(value_clip=r.value_clip, value_coef=r.value_coef)
    return "ppo_clip_value", functools.partial(losses.ppo_clip_value, **bound)
  return "ppo_clip", functools.partial(losses.ppo_clip, **bound)


@dataclasses.dataclass(frozen=True)
class Actors:
  """What one iteration needs besides the state: the generating model, the scorers and the task."""
  config: object
  task: math_task.MathTask
  tokenizer: object
  gen_graphdef: object  # a plain Transformer: the policy (or the critic model's backbone) generates
  ref_params: object  # the frozen base run: the KL reference
  score_policy: object
  score_ref: object
  place: object  # local numpy rows -> global arrays on the mesh
  tools: dict
  reward_model: tuple | None = None  # (score, params) of an `lmjax rm` run, when it gives the reward


def generation_params(params, critic: bool):
  return params["backbone"] if critic else params


def sample_replies(actors: Actors, params, problems, *, samples: int, temperature: float, seed: int) -> list:
  """`samples` rollouts per problem (problem-major), in chunks of rollout.batch rows (config.rollout)."""
  g = actors.config.rollout
  prompts = [math_task.prompt_ids(p, actors.tokenizer) for p in problems for _ in range(samples)]
  sampling = SamplingParams(max_new_tokens=g.max_new_tokens, temperature=temperature, top_k=g.top_k, seed=seed)
  out = []
  for start in range(0, len(prompts), g.batch):
    out += rollout(actors.gen_graphdef, params, actors.tokenizer, prompts[start:start + g.batch],
                   dataclasses.replace(sampling, seed=seed + start), tools=actors.tools,
                   max_tool_calls=g.max_tool_calls, max_reply_tokens=g.max_reply_tokens)
  return out


def rewards_of(actors: Actors, rollouts, problems, samples: int) -> np.ndarray:
  expanded = [p for p in problems for _ in range(samples)]
  return np.array([math_task.reward(ro, p, actors.tokenizer) for ro, p in zip(rollouts, expanded)], np.float32)


def collect(actors: Actors, params, iteration: int, critic: bool) -> tuple[dict, dict, np.ndarray]:
  """(rows with old/ref logprobs and advantages, rollout metrics, reward per reply) of one iteration's fresh
  samples."""
  r, t = actors.config.rl, actors.config.train
  rng = np.random.default_rng([r.seed, iteration])
  problems = [actors.task.train[i] for i in rng.choice(len(actors.task.train), r.prompts_per_iteration,
                                                        replace=False)]
  started = time.perf_counter()
  rollouts = sample_replies(actors, generation_params(params, critic), problems, samples=r.group_size,
                            temperature=actors.config.rollout.temperature,
                            seed=(r.seed * 100_003 + iteration) % 2**24)
  rollout_s = time.perf_counter() - started
  correct_b = rewards_of(actors, rollouts, problems, r.group_size)
  rewards_b = correct_b if actors.reward_model is None else reward_model_scores(actors, rollouts)
  rows = experience.sequence_rows(rollouts, t.seq_len, actors.tokenizer.pad_id)
  mask_bt = rows["loss_mask"]
  chunk = score_batch(actors.config)
  scored = experience.score_in_chunks(actors.score_policy, params, rows, chunk, actors.place)
  rows["old_logprobs"] = scored[0]
  (rows["ref_logprobs"],) = experience.score_in_chunks(actors.score_ref, actors.ref_params, rows, chunk,
                                                       actors.place)
  metrics = {}
  if critic:
    values_bt = scored[1] * mask_bt
    rewards_bt = experience.terminal_rewards(rewards_b, mask_bt)
    adv_bt, returns_bt = jax.device_get(advantage_estimators.gae(
        jnp.asarray(rewards_bt), jnp.asarray(values_bt), jnp.asarray(mask_bt), gamma=r.gamma, lam=r.lam))
    rows["advantages"] = experience.whiten(np.asarray(adv_bt), mask_bt).astype(np.float32)
    rows["old_values"], rows["returns"] = values_bt.astype(np.float32), np.asarray(returns_bt, np.float32)
    explained = experience.explained_variance(values_bt, rows["returns"], mask_bt)
    metrics |= {"explained_variance": explained} if np.isfinite(explained) else {}
  else:
    estimator = advantage_estimators.ESTIMATORS[r.advantage]
    adv_b = np.asarray(estimator(jnp.asarray(rewards_b), r.group_size, scale=r.scale_advantages))
    rows["advantages"] = (adv_b[:, None] * mask_bt).astype(np.float32)
  groups = rewards_b.reshape(-1, r.group_size)
  metrics |= {"reward": float(rewards_b.mean()), "correct": float(correct_b.mean()),
              "pass_at_group": float((correct_b.reshape(groups.shape).max(axis=1) > 0).mean()),
              "uniform_groups": float((groups.min(axis=1) == groups.max(axis=1)).mean()),
              "response_length": float(mask_bt.sum(axis=1).mean()),
              "tool_calls": float(np.mean([ro.tool_calls for ro in rollouts])), "rollout_s": rollout_s}
  return rows, metrics, rewards_b


def reward_model_scores(actors: Actors, rollouts) -> np.ndarray:
  """The reward model's score of each whole prompt + reply."""
  score, params = actors.reward_model
  rows = experience.reward_model_rows(rollouts, actors.config.train.seq_len, actors.tokenizer.pad_id)
  (scores,) = experience.score_in_chunks(score, params, rows, score_batch(actors.config), actors.place,
                                         keys=("tokens", "positions", "segment_ids", "last_index"))
  return scores.astype(np.float32)


def load_reward_model(config):
  """(score, params) of the `lmjax rm` run in config.rl.reward_model_workdir, or None for the verifier."""
  if config.rl.reward != "reward_model":
    return None
  _, loaded = load_base_run(config, config.rl.reward_model_workdir, "rl.reward_model_workdir", scalar_head=True)
  return experience.make_reward_scorer(loaded.graphdef), loaded.params


def update(actors: Actors, train_step, state, rows: dict, iteration: int) -> tuple[object, dict]:
  """`rl.epochs` shuffled passes of minibatches through the train step; metrics averaged over the steps."""
  r, t = actors.config.rl, actors.config.train
  n = len(rows["tokens"])
  step_rng = jax.random.key(r.seed)
  sums: dict[str, float] = {}
  steps = 0
  for epoch in range(r.epochs):
    order = np.random.default_rng([r.seed, iteration, epoch]).permutation(n)
    for start in range(0, n, t.batch_size):
      batch = {k: v[order[start:start + t.batch_size]] for k, v in rows.items()}
      state, metrics = train_step(state, actors.place(batch), step_rng)
      for k, v in jax.device_get(metrics).items():
        sums[k] = sums.get(k, 0.0) + float(v)
      steps += 1
  return state, {k: v / steps for k, v in sums.items()}


def heldout_rollouts(actors: Actors, params, critic: bool, samples: int) -> tuple[list, list]:
  """(one greedy reply per held-out problem, `samples` replies each at rollout.temperature)."""
  problems, gen = actors.task.heldout, generation_params(params, critic)
  greedy = sample_replies(actors, gen, problems, samples=1, temperature=0.0, seed=0)
  sampled = sample_replies(actors, gen, problems, samples=samples, temperature=actors.config.rollout.temperature,
                           seed=1)
  return greedy, sampled


def evaluate_heldout(actors: Actors, params, critic: bool, samples: int,
                     rollouts: tuple[list, list] | None = None) -> dict:
  """Held-out accuracy: pass@1 (the mean accuracy of `samples` samples at rollout.temperature, the unbiased
  estimate), pass@G (solved by any of them) and greedy accuracy; of `rollouts` if given (those of
  `heldout_rollouts`, which `lmjax eval` also reads tool calls from)."""
  problems = actors.task.heldout
  greedy, sampled = rollouts or heldout_rollouts(actors, params, critic, samples)
  sampled_rewards = rewards_of(actors, sampled, problems, samples).reshape(len(problems), -1)
  return {"heldout_pass1": float(sampled_rewards.mean()),
          "heldout_pass_at_g": float((sampled_rewards.max(axis=1) > 0).mean()),
          "heldout_greedy": float(rewards_of(actors, greedy, problems, 1).mean())}


def _print_table(rows: list[dict]) -> None:
  keys = ("step", "reward", "heldout_pass1", "heldout_pass_at_g", "heldout_greedy", "kl_ref", "response_length")
  print(" ".join(f"{k:>18}" for k in keys))
  for row in rows:
    print(" ".join(f"{row[k]:>18.3f}" if isinstance(row.get(k), float) else f"{row.get(k, ''):>18}" for k in keys))


def make_actors(config, setup, base_config, base, critic: bool) -> Actors:
  """The task, scorers and tools of a run, checking that its prompts and replies fit train.seq_len."""
  r, reply_tokens = config.rl, config.rollout.max_reply_tokens
  task = math_task.make_math_task(config.math, heldout_problems=r.heldout_problems,
                                  train_problems=r.train_problems, seed=r.seed, sft_config=base_config.get("sft"))
  longest = max(len(math_task.prompt_ids(p, base.tokenizer)) for p in task.train + task.heldout)
  if longest + reply_tokens > config.train.seq_len + 1:
    raise ConfigError(f"prompts of up to {longest} tokens plus rollout.max_reply_tokens={reply_tokens} exceed "
                      f"train.seq_len={config.train.seq_len}; raise train.seq_len or lower "
                      "rollout.max_reply_tokens")
  return Actors(config=config, task=task, tokenizer=base.tokenizer, gen_graphdef=base.graphdef,
                ref_params=base.params, score_policy=experience.make_scorer(setup.graphdef, with_values=critic),
                score_ref=experience.make_scorer(base.graphdef, with_values=False),
                place=functools.partial(global_batch, setup), tools=make_tools(),
                reward_model=load_reward_model(config))


def run(config, workdir: str) -> dict:
  """RL from config.rl.base_workdir (usually the SFT run) for config.rl.iterations, resuming from WORKDIR."""
  check_rl_config(config)
  config = with_derived_steps(config)
  r = config.rl
  base_config, base = load_base_run(config, r.base_workdir, "rl.base_workdir")
  carry_tokenizer(base_config, r.base_workdir, workdir)
  critic = r.advantage == "gae"
  setup = build_train_setup(config, tokenizer_path(base_config, r.base_workdir), scalar_head=critic)
  actors = make_actors(config, setup, base_config, base, critic)
  loss_name, loss_fn = policy_loss(r)
  train_step = make_train_step(setup.graphdef, loss_fn, setup.optimizer, setup.shardings,
                               batch_sharding=setup.batch_sharding, grad_accum_steps=config.train.grad_accum_steps,
                               lr_schedule=setup.schedule)
  with fs.open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  manager = checkpoint.make_manager(os.path.join(workdir, "checkpoints"), keep=config.checkpoint.keep)
  start = manager.latest_step() or 0
  if start:
    state, _ = checkpoint.restore(manager, start, setup.abstract_state, setup.shardings)
  else:
    state = with_backbone(setup, base) if critic else fresh_state(setup, base.params)
  log = MetricsLog(os.path.join(workdir, "metrics.jsonl"), resume_step=start,
                   tensorboard_dir=os.path.join(workdir, "tensorboard") if config.log.tensorboard else None)
  print(f"rl: {loss_name} with {r.advantage} advantages from {r.base_workdir} (step {base.step}); "
        f"{r.iterations} iterations of {r.prompts_per_iteration}×{r.group_size} rollouts, "
        f"{total_updates(config)} updates; {len(actors.task.heldout)} held-out problems")
  history = []
  if not start:
    first = {"step": 0, **evaluate_heldout(actors, state.params, critic, r.eval_samples)}
    log.write(0, {k: v for k, v in first.items() if k != "step"})
    history.append(first)
  bar = tqdm(total=r.iterations, initial=start, desc="rl", unit="iter", dynamic_ncols=True)
  started = time.time()
  for iteration in range(start + 1, r.iterations + 1):
    tick = time.perf_counter()
    rows, metrics, _ = collect(actors, state.params, iteration, critic)
    train_tick = time.perf_counter()
    state, update_metrics = update(actors, train_step, state, rows, iteration)
    metrics |= update_metrics
    metrics["train_s"] = time.perf_counter() - train_tick
    if not np.isfinite(metrics["loss"]):
      raise NonFiniteLossError(f"RL loss is {metrics['loss']} at iteration {iteration}; stopped before "
                               f"checkpointing it. The last good checkpoint is in {workdir}/checkpoints; "
                               "lower optim.lr or rl.clip_eps and rerun to resume.")
    if iteration == r.iterations or (r.eval_every and iteration % r.eval_every == 0):
      metrics |= evaluate_heldout(actors, state.params, critic, r.eval_samples)
    metrics |= {"updates": int(state.step), "iteration_s": time.perf_counter() - tick}
    log.write(iteration, metrics)
    history.append({"step": iteration, **metrics})
    checkpoint.save(manager, iteration, state, {"iteration": iteration})
    bar.set_postfix(reward=f"{metrics['reward']:.2f}", kl=f"{metrics.get('kl_ref', 0):.3f}",
                    pass1=f"{metrics.get('heldout_pass1', float('nan')):.2f}", refresh=False)
    bar.update(1)
  manager.wait_until_finished()
  bar.close()
  log.close()
  _print_table([h for h in history if "heldout_pass1" in h])
  summary = {"iterations": r.iterations, "resumed_from": start, "wall_s": time.time() - started,
             **{k: v for k, v in (history[-1] if history else {}).items() if k != "step"}}
  with fs.open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  return summary

