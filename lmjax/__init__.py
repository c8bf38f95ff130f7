"""lmjax: train a language model the whole way, from web pages to an RL-tuned assistant, in JAX."""
__version__ = "0.1.0"
