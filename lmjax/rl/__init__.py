"""Reinforcement learning: advantage estimators (GAE, group-relative), rollouts, the PPO/group-RL loop."""
