"""HuggingFace `config.json` <-> lmjax config: the architectures that map, and the fields lmjax cannot represent.

lmjax's model is Llama's (pre-norm RMSNorm blocks, rotate-half RoPE, grouped-query attention, a SwiGLU MLP)
with the options the Llama-shaped families add: Llama 3.1/3.2's "llama3" RoPE remap, Qwen2's q/k/v biases,
Qwen3's per-head q/k norms, a head size other than width / heads (Qwen3, Mistral Nemo). A checkpoint that
differs in anything else (another activation, output-projection or MLP biases, another RoPE scaling, a
sliding window shorter than lmjax's context) is refused with the field to blame, never converted into a model
that computes something else.
"""
from configs import base
from lmjax.config import ConfigError

# model_type -> (the HF class, the lmjax options that architecture fixes). Mistral is Llama's forward under
# another name (its sliding window is checked apart): an import records it in model.hf_architecture, and export
# writes that architecture, else the first entry whose options match.
ARCHITECTURES = {
    "llama": ("LlamaForCausalLM", dict(qkv_bias=False, qk_norm=False)),
    "qwen2": ("Qwen2ForCausalLM", dict(qkv_bias=True, qk_norm=False)),
    "qwen3": ("Qwen3ForCausalLM", dict(qkv_bias=False, qk_norm=True)),
    "mistral": ("MistralForCausalLM", dict(qkv_bias=False, qk_norm=False)),
}
DEFAULT_HEAD_DIM = {"qwen3": 128}  # Qwen3Config's head_dim when config.json has none; others: width / heads
LLAMA3_FIELDS = ("factor", "low_freq_factor", "high_freq_factor")


def rope_parameters(hf: dict) -> dict:
  """RoPE's parameters as transformers reads them: `rope_scaling` (older files) over `rope_parameters`, with
  `rope_theta` from there or from the top level."""
  params = dict(hf.get("rope_scaling") or hf.get("rope_parameters") or {})
  params.setdefault("rope_theta", hf.get("rope_theta", 10_000.0))
  params.setdefault("rope_type", params.get("type", "default"))
  return params


def head_dim(hf: dict) -> int:
  """The per-head size HF builds: config.json's head_dim, else the architecture's default."""
  width, heads = hf.get("hidden_size", 0), hf.get("num_attention_heads") or 1
  return hf.get("head_dim") or DEFAULT_HEAD_DIM.get(hf.get("model_type"), width // heads)


def sliding_window(hf: dict) -> int | None:
  """The attention window any layer applies, or None: Qwen's applies only with use_sliding_window, and only
  to the layers layer_types (or max_window_layers) marks as sliding."""
  window = hf.get("sliding_window")
  if hf.get("model_type") not in ("qwen2", "qwen3") or window is None:
    return window
  if not hf.get("use_sliding_window", False):
    return None
  layer_types = hf.get("layer_types")
  if layer_types is not None:
    return window if "sliding_attention" in layer_types else None
  return window if hf.get("max_window_layers", 28) < hf.get("num_hidden_layers", 0) else None


def unsupported(hf: dict, seq_len: int) -> list[str]:
  """One message per field of an HF config that lmjax's model cannot represent (empty when it can), for runs
  of up to `seq_len` tokens (config.train.seq_len)."""
  model_type, rope = hf.get("model_type"), rope_parameters(hf)
  window = sliding_window(hf)
  checks = [
      (model_type in ARCHITECTURES,
       f"model_type={model_type!r}: lmjax imports {', '.join(ARCHITECTURES)}"),
      (hf.get("hidden_act", "silu") == "silu",
       f"hidden_act={hf.get('hidden_act')!r}: lmjax's MLP is SwiGLU, which needs 'silu'"),
      (rope["rope_type"] in ("default", "llama3"),
       f"rope_parameters/rope_scaling rope_type={rope['rope_type']!r}: lmjax implements 'default' and 'llama3'"),
      (rope["rope_type"] != "llama3" or all(field in rope for field in LLAMA3_FIELDS),
       f"rope_parameters/rope_scaling of type 'llama3' needs {', '.join(LLAMA3_FIELDS)}; it has "
       f"{', '.join(sorted(rope))}"),
      (rope.get("partial_rotary_factor", 1.0) == 1.0,
       f"partial_rotary_factor={rope.get('partial_rotary_factor')}: lmjax rotates the whole head"),
      (not (model_type in ("llama", "qwen3") and hf.get("attention_bias", False)),
       "attention_bias=true: lmjax's attention has no output-projection bias (only Qwen2's q/k/v biases)"),
      (not hf.get("mlp_bias", False), "mlp_bias=true: lmjax's MLP projections have no bias"),
      (window is None or window >= seq_len,
       f"sliding_window={window}: lmjax attends to the whole prefix, which equals a window only as long as the "
       f"context (train.seq_len={seq_len})"),
      (head_dim(hf) % 2 == 0, f"head_dim={head_dim(hf)}: RoPE needs an even head size"),
  ]
  return [message for ok, message in checks if not ok]


def lmjax_config(hf: dict, source: str = "config.json"):
  """The lmjax config: `configs/base.py` with model.* from `hf`, locked; ConfigError if lmjax can't run it."""
  config = base.get_config()
  problems = unsupported(hf, config.train.seq_len)
  if problems:
    raise ConfigError(f"{source} describes a model lmjax cannot represent: " + "; ".join(problems))
  width, heads = hf["hidden_size"], hf["num_attention_heads"]
  rope, h = rope_parameters(hf), head_dim(hf)
  config.model.update(
      vocab_size=hf["vocab_size"], num_layers=hf["num_hidden_layers"], embed_dim=width, num_heads=heads,
      num_kv_heads=hf.get("num_key_value_heads") or heads, mlp_dim=hf["intermediate_size"],
      head_dim=0 if h * heads == width else h, rope_theta=float(rope["rope_theta"]),
      norm_eps=float(hf.get("rms_norm_eps", 1e-6)), tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
      init_std=float(hf.get("initializer_range", config.model.init_std)), **ARCHITECTURES[hf["model_type"]][1])
  if _by_options(config.model) != hf["model_type"]:
    config.model.hf_architecture = hf["model_type"]
  if rope["rope_type"] == "llama3":
    config.model.rope_scaling.update(
        type="llama3", **{field: float(rope[field]) for field in LLAMA3_FIELDS},
        original_max_position_embeddings=int(rope.get("original_max_position_embeddings")
                                              or hf["max_position_embeddings"]))
  config.lock()
  return config


def _options(model) -> dict:
  return {option: bool(getattr(model, option)) for option in ("qkv_bias", "qk_norm")}


def _by_options(model) -> str | None:
  """The first HF architecture whose fixed options are `model`'s, or None."""
  return next((name for name, (_, fixed) in ARCHITECTURES.items() if fixed == _options(model)), None)


def model_type(model) -> str:
  """The HF architecture of lmjax model fields `model`: model.hf_architecture (an import's origin) if set, else
  the one its options describe; ConfigError naming the fields if none has them."""
  options, recorded = _options(model), getattr(model, "hf_architecture", "")
  if recorded:
    if recorded not in ARCHITECTURES or ARCHITECTURES[recorded][1] != options:
      raise ConfigError(f"config.model.hf_architecture={recorded!r} with qkv_bias={options['qkv_bias']}, "
                        f"qk_norm={options['qk_norm']}: HF's {recorded!r} is not that model; set hf_architecture "
                        f"to '' (or one of {', '.join(ARCHITECTURES)} that has these options)")
    return recorded
  name = _by_options(model)
  if name is None:
    raise ConfigError(f"config.model qkv_bias={options['qkv_bias']}, qk_norm={options['qk_norm']}: no HuggingFace "
                      "architecture lmjax exports has both (Qwen2 has q/k/v biases, Qwen3 q/k norms)")
  return name


def _rope_fields(model) -> dict:
  """`rope_parameters` (transformers >= 5) and `rope_theta` / `rope_scaling` (older releases)."""
  scaling = model.rope_scaling
  if scaling.type == "none":
    return {"rope_parameters": {"rope_type": "default", "rope_theta": model.rope_theta},
            "rope_theta": model.rope_theta, "rope_scaling": None}
  llama3 = {"rope_type": "llama3", **{field: getattr(scaling, field) for field in LLAMA3_FIELDS},
            "original_max_position_embeddings": scaling.original_max_position_embeddings}
  return {"rope_parameters": {**llama3, "rope_theta": model.rope_theta}, "rope_theta": model.rope_theta,
          "rope_scaling": llama3}


def hf_config(model, *, max_position_embeddings: int, dtype: str, special_ids: dict | None = None) -> dict:
  """A config.json of the HF architecture `model_type(model)` for lmjax model fields `model` (config.model
  or a ModelConfig). `special_ids`: bos/eos/pad token ids from the tokenizer, when there is one.

  No sliding window is written whatever the source had: lmjax attends to the whole prefix, and so does the
  exported model.
  """
  name = model_type(model)
  h = model.head_dim or model.embed_dim // model.num_heads
  fields = {
      "architectures": [ARCHITECTURES[name][0]], "model_type": name, "vocab_size": model.vocab_size,
      "hidden_size": model.embed_dim, "intermediate_size": model.mlp_dim, "num_hidden_layers": model.num_layers,
      "num_attention_heads": model.num_heads, "num_key_value_heads": model.num_kv_heads, "head_dim": h,
      "hidden_act": "silu", "rms_norm_eps": model.norm_eps, **_rope_fields(model),
      "attention_bias": False, "mlp_bias": False, "attention_dropout": 0.0,
      "tie_word_embeddings": model.tie_embeddings, "max_position_embeddings": max_position_embeddings,
      "initializer_range": model.init_std, "dtype": dtype, "torch_dtype": dtype, "use_cache": True,
      **{f"{token}_token_id": token_id for token, token_id in (special_ids or {}).items()},
  }
  if name in ("qwen2", "qwen3"):
    fields |= {"use_sliding_window": False, "sliding_window": None, "max_window_layers": model.num_layers}
  if name == "mistral":
    fields["sliding_window"] = None  # MistralConfig's default is a 4,096-token window
  return fields
