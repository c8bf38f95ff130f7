"""HF config.json -> lmjax config: the fields that map (Llama incl. 'llama3' RoPE, Mistral, Qwen2, Qwen3), and a
clear error for each that lmjax can't represent. No torch needed: the configs are written by hand (the shape of
transformers' save_pretrained)."""
import json

import pytest

from lmjax import cli
from lmjax.config import ConfigError
from lmjax.convert import from_hf
from lmjax.convert.hf_config import hf_config, lmjax_config

LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128, "hidden_size": 64,
         "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "head_dim": 16, "hidden_act": "silu", "rms_norm_eps": 1e-6, "attention_bias": False,
         "mlp_bias": False, "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"},
         "tie_word_embeddings": True, "initializer_range": 0.02, "max_position_embeddings": 2048}


LLAMA3_31 = {"rope_parameters": None, "rope_theta": 500000.0, "max_position_embeddings": 131072,
             "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 8192, "rope_type": "llama3"}}


def _hf_dir(tmp_path, **changes):
  (tmp_path / "config.json").write_text(json.dumps(LLAMA | changes))
  return str(tmp_path)


def test_llama_config_maps_onto_the_model_fields():
  m = lmjax_config(LLAMA).model
  shape = (m.vocab_size, m.num_layers, m.embed_dim, m.num_heads, m.num_kv_heads, m.mlp_dim)
  assert shape == (128, 2, 64, 4, 2, 96)
  assert (m.rope_theta, m.norm_eps, m.tie_embeddings) == (500000.0, 1e-6, True)


def test_older_top_level_rope_theta_and_missing_kv_heads_are_read():
  old = {k: v for k, v in LLAMA.items() if k not in ("rope_parameters", "head_dim")}
  m = lmjax_config(old | {"rope_theta": 1e4, "rope_scaling": None, "num_key_value_heads": None}).model
  assert (m.rope_theta, m.num_kv_heads) == (1e4, 4)


@pytest.mark.parametrize("changes", [
    {}, LLAMA3_31, {"model_type": "qwen2", "head_dim": None}, {"model_type": "qwen3", "head_dim": 32},
    {"model_type": "mistral", "sliding_window": 4096}])
def test_exported_config_reads_back_as_the_same_model(changes):
  m = lmjax_config(LLAMA | changes).model
  exported = hf_config(m, max_position_embeddings=256, dtype="float32")
  assert exported["model_type"] == changes.get("model_type", "llama")
  assert lmjax_config(exported).model == m


def test_only_an_architecture_the_options_do_not_name_is_recorded():
  assert [lmjax_config(LLAMA | {"model_type": t}).model.hf_architecture for t in ("llama", "qwen2", "mistral")] == [
      "", "", "mistral"]
  m = lmjax_config(LLAMA | {"model_type": "mistral"}).model
  assert hf_config(m, max_position_embeddings=256, dtype="float32")["sliding_window"] is None
  m.unlock()
  m.qkv_bias = True  # Mistral has no q/k/v biases
  with pytest.raises(ConfigError, match="hf_architecture='mistral' with qkv_bias=True"):
    hf_config(m, max_position_embeddings=256, dtype="float32")


def test_llama_3_1_rope_scaling_in_the_older_format_maps_onto_model_rope_scaling():
  m = lmjax_config(LLAMA | LLAMA3_31).model
  assert m.rope_theta == 500000.0 and m.rope_scaling.to_dict() == {
      "type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192}


def test_qwen_configs_map_biases_norms_and_head_size():
  qwen2 = lmjax_config(LLAMA | {"model_type": "qwen2", "use_sliding_window": False, "sliding_window": 4096}).model
  assert (qwen2.qkv_bias, qwen2.qk_norm, qwen2.head_dim) == (True, False, 0)  # 0: embed_dim / num_heads
  no_head_dim = {k: v for k, v in LLAMA.items() if k != "head_dim"}
  qwen3 = lmjax_config(no_head_dim | {"model_type": "qwen3"}).model
  assert (qwen3.qkv_bias, qwen3.qk_norm, qwen3.head_dim) == (False, True, 128)  # Qwen3Config's default


def test_a_window_at_least_the_context_is_accepted_as_full_attention():
  assert lmjax_config(LLAMA | {"model_type": "mistral", "sliding_window": 4096}).model.num_layers == 2


def test_export_refuses_a_model_no_hf_architecture_has():
  m = lmjax_config(LLAMA).model
  m.unlock()
  m.update(qkv_bias=True, qk_norm=True)
  with pytest.raises(ConfigError, match="qkv_bias=True, qk_norm=True"):
    hf_config(m, max_position_embeddings=256, dtype="float32")


@pytest.mark.parametrize("changes, field", [
    ({"hidden_act": "gelu"}, "hidden_act='gelu'"),
    ({"rope_parameters": {"rope_type": "yarn", "rope_theta": 5e5, "factor": 4.0}}, "rope_type='yarn'"),
    ({"rope_parameters": None, "rope_scaling": {"type": "linear", "factor": 2.0}}, "rope_type='linear'"),
    ({"rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0}}, "needs factor, low_freq"),
    ({"rope_parameters": {"rope_type": "default", "rope_theta": 1e4, "partial_rotary_factor": 0.5}},
     "partial_rotary_factor=0.5"),
    ({"attention_bias": True}, "attention_bias=true"),
    ({"model_type": "qwen3", "attention_bias": True}, "attention_bias=true"),
    ({"mlp_bias": True}, "mlp_bias=true"),
    ({"head_dim": 15}, "head_dim=15"),
    ({"model_type": "gpt2"}, "model_type='gpt2'"),
    ({"model_type": "mistral", "sliding_window": 128}, "sliding_window=128"),
    ({"model_type": "qwen2", "use_sliding_window": True, "sliding_window": 128, "max_window_layers": 1},
     "sliding_window=128"),
])
def test_unsupported_config_is_an_error_naming_the_field(tmp_path, changes, field):
  with pytest.raises(ConfigError, match="lmjax cannot represent") as raised:
    from_hf(_hf_dir(tmp_path, **changes))
  assert field in str(raised.value) and "config.json" in str(raised.value)


def test_cli_prints_the_unsupported_field_without_a_traceback(tmp_path, capsys):
  (tmp_path / "hf").mkdir()
  hf_dir = _hf_dir(tmp_path / "hf", hidden_act="relu")
  with pytest.raises(SystemExit) as raised:
    cli.main(["convert", "--from-hf", hf_dir, "--workdir", str(tmp_path / "run")])
  assert raised.value.code == 2 and "hidden_act='relu'" in capsys.readouterr().err
  assert not (tmp_path / "run").exists()
