"""PPO's update: `rl.epochs` shuffled passes of minibatches over one iteration's rows through the train step."""
import jax
import numpy as np


def ppo_epochs(train_step, state, rows: dict, *, rl_config, batch_size: int, iteration: int, place):
  """(state, metrics averaged over the steps); minibatch order from (rl.seed, iteration, epoch)."""
  r, n = rl_config, len(rows["tokens"])
  step_rng = jax.random.key(r.seed)
  sums: dict[str, float] = {}
  steps = 0
  for epoch in range(r.epochs):
    order = np.random.default_rng([r.seed, iteration, epoch]).permutation(n)
    for start in range(0, n, batch_size):
      batch = {k: v[order[start:start + batch_size]] for k, v in rows.items()}
      state, metrics = train_step(state, place(batch), step_rng)
      for k, v in jax.device_get(metrics).items():
        sums[k] = sums.get(k, 0.0) + float(v)
      steps += 1
  return state, {k: v / steps for k, v in sums.items()}
