"""Inference: sampling continuations from a trained model."""
