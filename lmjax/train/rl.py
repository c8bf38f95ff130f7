"""`lmjax rl`: reinforcement learning on verifiable math word problems, through the one train step.

    lmjax rl --config configs/rl_quickstart.py --workdir runs/quickstart_rl \
        --config.rl.base_workdir=runs/quickstart_sft

Each iteration samples `prompts_per_iteration` problems and `group_size` replies to each with the inference
engine (calculator calls run; their outputs are never trained on), rewards a reply 1 if its final answer is
right (or by a reward model), estimates advantages — group-relative (GRPO-style, no critic) or GAE with a
value head — and runs `epochs` passes of minibatches through `make_train_step` with the loss `policy_loss`
picks from `LOSSES`. The frozen base run is the KL reference. Every iteration is checkpointed; rerunning
resumes exactly; a SIGTERM/SIGINT stops the run after the iteration it arrived in. The parts are in
`lmjax/rl/`; this module wires them.
"""
import functools
import time

import numpy as np
from tqdm import tqdm

from lmjax import losses
from lmjax.config import ConfigError
from lmjax.infer.engine import cache_length
from lmjax.infer.tools import make_tools
from lmjax.rl import experience, math_task
from lmjax.rl.advantages import ESTIMATORS
from lmjax.rl.collect import Scorers, collect, iteration_problems
from lmjax.rl.heldout import evaluate_heldout
from lmjax.rl.replies import ReplySampler
from lmjax.rl.settings import check_rl_config, policy_loss, score_batch, total_updates, with_derived_steps
from lmjax.rl.update import drop_uniform_groups, ppo_epochs
from lmjax.train import lora
from lmjax.train.base_run import carry_tokenizer, load_base_run, start_state, with_backbone
from lmjax.train.loop import global_batch
from lmjax.train.setup import build_train_setup, tokenizer_path
from lmjax.train.step import make_train_step
from lmjax.train.workdir import Workdir


def make_task(config, base_config, tokenizer) -> tuple[math_task.MathTask, int]:
  """(the task, its longest prompt), checking that prompts and replies fit train.seq_len."""
  r, reply_tokens = config.rl, config.rollout.max_reply_tokens
  task = math_task.make_math_task(config.math, heldout_problems=r.heldout_problems,
                                  train_problems=r.train_problems, seed=r.seed, sft_config=base_config.get("sft"))
  longest = max(len(math_task.prompt_ids(p, tokenizer)) for p in task.train + task.heldout)
  if longest + reply_tokens > config.train.seq_len + 1:
    raise ConfigError(f"prompts of up to {longest} tokens plus rollout.max_reply_tokens={reply_tokens} exceed "
                      f"train.seq_len={config.train.seq_len}; raise train.seq_len or lower "
                      "rollout.max_reply_tokens")
  return task, longest


def make_scorers(config, setup, base, critic: bool) -> Scorers:
  reward_model = None
  if config.rl.reward == "reward_model":
    rm_config, rm = load_base_run(config, config.rl.reward_model_workdir, "rl.reward_model_workdir",
                                  scalar_head=True)
    weight = rm_config.rm.get("logprob_weight", 0.0)  # runs from before the field score with the head alone
    reward_model = experience.make_reward_scorer(rm.graphdef, weight), rm.params
  return Scorers(policy=experience.make_scorer(setup.graphdef, with_values=critic),
                 reference=experience.make_scorer(base.graphdef, with_values=False),
                 reference_params=base.params, chunk=score_batch(config),
                 place=functools.partial(global_batch, setup), reward_model=reward_model)


def _print_table(rows: list[dict]) -> None:
  keys = ("step", "reward", "heldout_pass1", "heldout_pass_at_g", "heldout_greedy", "kl_ref", "response_length")
  print(" ".join(f"{k:>18}" for k in keys))
  for row in rows:
    print(" ".join(f"{row[k]:>18.3f}" if isinstance(row.get(k), float) else f"{row.get(k, ''):>18}" for k in keys))


def run(config, workdir: str) -> dict:
  """RL from config.rl.base_workdir (usually the SFT run) for config.rl.iterations, resuming from WORKDIR."""
  check_rl_config(config)
  config = lora.with_base(with_derived_steps(config), config.rl.base_workdir)
  r, t = config.rl, config.train
  base_config, base = load_base_run(config, r.base_workdir, "rl.base_workdir")
  carry_tokenizer(base_config, r.base_workdir, workdir)
  estimator, (loss_name, loss_fn) = ESTIMATORS[r.advantage], policy_loss(r)
  setup = build_train_setup(config, tokenizer_path(base_config, r.base_workdir), scalar_head=estimator.uses_values)
  task, longest = make_task(config, base_config, base.tokenizer)
  sampler = ReplySampler(base.graphdef, base.tokenizer, config.rollout, make_tools(),
                         cache_length(longest, config.rollout.max_reply_tokens))
  scorers = make_scorers(config, setup, base, estimator.uses_values)
  frozen = setup.frozen(base.params)  # LoRA's base, shared with the reference; else nothing
  train_step = make_train_step(setup.graphdef, loss_fn, setup.optimizer, setup.shardings,
                               batch_sharding=setup.batch_sharding, grad_accum_steps=t.grad_accum_steps,
                               lr_schedule=setup.schedule, frozen=frozen)
  with Workdir(config, workdir) as run_dir:
    init = lambda: with_backbone(setup, base) if estimator.uses_values else start_state(setup, base.params)
    state, saved = run_dir.restore_or_init(setup, init)
    start = saved["iteration"] if saved else 0
    heldout = lambda params: evaluate_heldout(sampler, frozen.model_params(params), task.heldout, r.eval_samples)
    print(f"rl: {loss_name} with {r.advantage} advantages from {r.base_workdir} (step {base.step}); "
          f"{r.iterations} iterations of {r.prompts_per_iteration}×{r.group_size} rollouts, "
          f"{'at most ' if r.skip_uniform_groups else ''}{total_updates(config)} updates; "
          f"{len(task.heldout)} held-out problems")
    history = [] if start else [{"step": 0, **heldout(state.params)}]
    if history:
      run_dir.write(0, {k: v for k, v in history[0].items() if k != "step"})
    bar = tqdm(total=r.iterations, initial=start, desc="rl", unit="iter", dynamic_ncols=True,
               disable=not run_dir.is_main)
    started = time.time()
    for iteration in range(start + 1, r.iterations + 1):
      tick = time.perf_counter()
      rows, metrics, rewards = collect(sampler, scorers, estimator, r, t.seq_len, frozen.model_params(state.params),
                                    iteration_problems(task, r, iteration),
                                    seed=(r.seed * 100_003 + iteration) % 2**24)
      losses.check_batch_keys(loss_name, rows)
      if r.skip_uniform_groups:
        rows = drop_uniform_groups(rows, rewards, r.group_size)
        metrics["trained_rows"] = len(rows["tokens"])
      train_tick = time.perf_counter()
      state, update_metrics = ppo_epochs(train_step, state, rows, rl_config=r, batch_size=t.batch_size,
                                         iteration=iteration, place=scorers.place)
      metrics |= update_metrics | {"train_s": time.perf_counter() - train_tick}
      if not np.isfinite(metrics.get("loss", 0.0)):
        bar.close()
        run_dir.stop_on_nonfinite_loss(iteration, metrics["loss"], "Lower optim.lr or rl.clip_eps")
      if iteration == r.iterations or (r.eval_every and iteration % r.eval_every == 0):
        metrics |= heldout(state.params)
      metrics |= {"updates": int(state.step), "iteration_s": time.perf_counter() - tick}
      run_dir.write(iteration, metrics)
      history.append({"step": iteration, **metrics})
      run_dir.save(iteration, state, {"iteration": iteration})
      evaluated = {"heldout_pass1": f"{metrics['heldout_pass1']:.2f}"} if "heldout_pass1" in metrics else {}
      bar.set_postfix(reward=f"{metrics['reward']:.2f}", kl=f"{metrics.get('kl_ref', 0):.3f}", **evaluated,
                      refresh=False)
      bar.update(1)
      if iteration < r.iterations and run_dir.stop_requested():
        bar.close()
        run_dir.stop_preempted(f"iteration {iteration}")
    bar.close()
    if run_dir.is_main:
      _print_table([h for h in history if "heldout_pass1" in h])
    return run_dir.close({"iterations": r.iterations, "resumed_from": start, "wall_s": time.time() - started,
                          **{k: v for k, v in (history[-1] if history else {}).items() if k != "step"}})
