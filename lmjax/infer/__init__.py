"""Inference: one engine (KV-cache slots, continuous batching, tools) for chat, sampling, probing, evaluation and
RL's rollouts; the sampling rule it draws with; loading a run for inference; the tools and viewers."""
