"""The Llama-style decoder: layers, the transformer, parameter and FLOP counts."""
from lmjax.model.transformer import ModelConfig, Transformer, flops_per_token, param_count
