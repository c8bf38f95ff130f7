"""The Llama-style decoder: layers, the transformer, parameter and FLOP counts, the forward as a function."""
from lmjax.model.forward import init_params, logits, model_definition
from lmjax.model.transformer import ModelConfig, Transformer, flops_per_token, param_count
