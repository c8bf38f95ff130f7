"""HF config.json -> lmjax config: the fields that map, and a clear error for each that lmjax can't represent.
No torch needed: the configs are written by hand (the shape of transformers' LlamaConfig.save_pretrained)."""
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


def test_exported_config_reads_back_as_the_same_model():
  m = lmjax_config(LLAMA).model
  assert lmjax_config(hf_config(m, max_position_embeddings=256, dtype="float32")).model == m


@pytest.mark.parametrize("changes, field", [
    ({"hidden_act": "gelu"}, "hidden_act='gelu'"),
    ({"rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5, "factor": 8.0}}, "rope_type='llama3'"),
    ({"rope_parameters": None, "rope_scaling": {"type": "linear", "factor": 2.0}}, "rope_type='linear'"),
    ({"attention_bias": True}, "attention_bias=true"),
    ({"mlp_bias": True}, "mlp_bias=true"),
    ({"head_dim": 32}, "head_dim=32"),
    ({"model_type": "gpt2"}, "model_type='gpt2'"),
    ({"model_type": "mistral", "sliding_window": 4096}, "sliding_window=4096"),
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
