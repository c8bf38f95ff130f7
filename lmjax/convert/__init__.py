"""Checkpoint interop: HuggingFace Llama directories <-> lmjax configs, parameters and runs."""
from lmjax.convert.hf import from_hf, to_hf
