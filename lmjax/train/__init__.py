"""Training: the state, the one step, checkpoints, metrics and the pretraining loop."""
