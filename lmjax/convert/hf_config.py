"""HuggingFace Llama `config.json` <-> lmjax config: the fields that map, and the ones lmjax cannot represent.

lmjax's model is Llama's: pre-norm RMSNorm blocks, rotate-half RoPE, grouped-query attention without
biases, a SwiGLU MLP. A checkpoint that differs in any of these (scaled RoPE, biases, another activation,
a head size other than width / heads, sliding-window attention) is refused with the field to blame, never
converted into a model that computes something else.
"""
from configs import base
from lmjax.config import ConfigError

ARCHITECTURES = ("llama", "mistral")  # model_type values with Llama's weights and forward


def rope_theta(hf: dict) -> float:
  """The RoPE base: `rope_parameters.rope_theta` (transformers >= 5) or the older top-level `rope_theta`."""
  return float((hf.get("rope_parameters") or {}).get("rope_theta", hf.get("rope_theta", 10_000.0)))


def _rope_type(hf: dict) -> str:
  scaling = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
  return scaling.get("rope_type", scaling.get("type", "default"))


def _head_dim_ok(hf: dict) -> bool:
  width, heads = hf.get("hidden_size", 0), hf.get("num_attention_heads", 0)
  return heads > 0 and width % heads == 0 and hf.get("head_dim", width // heads) in (None, width // heads)


def unsupported(hf: dict) -> list[str]:
  """One message per field of an HF config that lmjax's Llama cannot represent (empty when it can)."""
  rope = _rope_type(hf)
  checks = [
      (hf.get("model_type") in ARCHITECTURES,
       f"model_type={hf.get('model_type')!r}: only {' and '.join(ARCHITECTURES)} are Llama's architecture"),
      (hf.get("hidden_act", "silu") == "silu",
       f"hidden_act={hf.get('hidden_act')!r}: lmjax's MLP is SwiGLU, which needs 'silu'"),
      (rope == "default",
       f"rope_parameters/rope_scaling rope_type={rope!r}: lmjax implements plain RoPE ('default') only"),
      (not hf.get("attention_bias", False), "attention_bias=true: lmjax's attention has no biases"),
      (not hf.get("mlp_bias", False), "mlp_bias=true: lmjax's MLP projections have no bias"),
      (not hf.get("sliding_window"),
       f"sliding_window={hf.get('sliding_window')}: lmjax attends to the whole prefix"),
      (_head_dim_ok(hf),
       f"head_dim={hf.get('head_dim')}: lmjax's head size is hidden_size / num_attention_heads = "
       f"{hf.get('hidden_size')}/{hf.get('num_attention_heads')}"),
  ]
  return [message for ok, message in checks if not ok]


def lmjax_config(hf: dict, source: str = "config.json"):
  """The lmjax config: `configs/base.py` with model.* from `hf`, locked; ConfigError if lmjax can't run it."""
  problems = unsupported(hf)
  if problems:
    raise ConfigError(f"{source} describes a model lmjax cannot represent: " + "; ".join(problems))
  config = base.get_config()
  heads = hf["num_attention_heads"]
  config.model.update(
      vocab_size=hf["vocab_size"], num_layers=hf["num_hidden_layers"], embed_dim=hf["hidden_size"],
      num_heads=heads, num_kv_heads=hf.get("num_key_value_heads") or heads, mlp_dim=hf["intermediate_size"],
      rope_theta=rope_theta(hf), norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
      tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
      init_std=float(hf.get("initializer_range", config.model.init_std)))
  config.lock()
  return config


def hf_config(model, *, max_position_embeddings: int, dtype: str, special_ids: dict | None = None) -> dict:
  """A `LlamaForCausalLM` config.json for lmjax model fields `model` (config.model or a ModelConfig).

  `special_ids`: bos/eos/pad token ids from the tokenizer, when there is one. RoPE is written both ways
  (`rope_parameters` for transformers >= 5, `rope_theta` for older releases).
  """
  theta = model.rope_theta
  return {
      "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": model.vocab_size,
      "hidden_size": model.embed_dim, "intermediate_size": model.mlp_dim,
      "num_hidden_layers": model.num_layers,
      "num_attention_heads": model.num_heads, "num_key_value_heads": model.num_kv_heads,
      "head_dim": model.embed_dim // model.num_heads, "hidden_act": "silu", "rms_norm_eps": model.norm_eps,
      "rope_parameters": {"rope_type": "default", "rope_theta": theta}, "rope_theta": theta,
      "rope_scaling": None, "attention_bias": False, "mlp_bias": False, "attention_dropout": 0.0,
      "tie_word_embeddings": model.tie_embeddings, "max_position_embeddings": max_position_embeddings,
      "initializer_range": model.init_std, "dtype": dtype, "torch_dtype": dtype, "use_cache": True,
      **{f"{name}_token_id": token_id for name, token_id in (special_ids or {}).items()},
  }
