"""Reinforcement learning in parts: replies to the math task (the inference engine), collect (rewards and
scores → training rows), advantage estimators of one signature (GAE, group-relative), held-out evaluation,
the config's checks, PPO's epochs. `lmjax.train.rl` wires them."""
