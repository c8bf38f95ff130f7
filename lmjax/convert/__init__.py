"""Checkpoint interop: HuggingFace Llama/Mistral/Qwen2/Qwen3 directories <-> lmjax configs, parameters and runs."""
from lmjax.convert.hf import from_hf, to_hf

__all__ = ["from_hf", "to_hf"]
