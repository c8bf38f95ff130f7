"""PPO's update: `rl.epochs` shuffled passes of minibatches over one iteration's rows through the train step."""
import jax
import numpy as np

from lmjax.rl.advantages import uniform_groups


def drop_uniform_groups(rows: dict, rewards_b: np.ndarray, group_size: int) -> dict:
  """The rows of the groups (consecutive `group_size` rows) whose rewards are not all equal."""
  keep = np.repeat(~uniform_groups(rewards_b, group_size), group_size)
  return {k: v[keep] for k, v in rows.items()}


def _padded(batch: dict, size: int) -> dict:
  """The minibatch with rows of zeros appended up to `size` (loss mask 0: they add nothing, and the train
  step keeps one shape)."""
  missing = size - len(batch["tokens"])
  return {k: np.concatenate([v, np.zeros((missing, *v.shape[1:]), v.dtype)]) if missing else v
          for k, v in batch.items()}


def ppo_epochs(train_step, state, rows: dict, *, rl_config, batch_size: int, iteration: int, place):
  """(state, metrics averaged over the steps; none without rows); minibatch order from (rl.seed, iteration,
  epoch). A last minibatch short of batch_size (rows left by `drop_uniform_groups`) is padded."""
  r, n = rl_config, len(rows["tokens"])
  step_rng = jax.random.key(r.seed)
  sums: dict[str, float] = {}
  steps = 0
  for epoch in range(r.epochs if n else 0):
    order = np.random.default_rng([r.seed, iteration, epoch]).permutation(n)
    for start in range(0, n, batch_size):
      batch = _padded({k: v[order[start:start + batch_size]] for k, v in rows.items()}, batch_size)
      state, metrics = train_step(state, place(batch), step_rng)
      for k, v in jax.device_get(metrics).items():
        sums[k] = sums.get(k, 0.0) + float(v)
      steps += 1
  return state, {k: v / steps for k, v in sums.items()}
