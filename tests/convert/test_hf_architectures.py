"""Llama 3.1's 'llama3' RoPE, Qwen2 (q/k/v biases), Qwen3 (q/k norms, a head size apart from width / heads)
and Mistral against transformers' own classes on small random models built here (nothing downloaded): logits
and greedy tokens match, and HF -> lmjax -> HF is exact and loads back as a model with the same logits."""
import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import safetensors.numpy  # noqa: E402

from lmjax import cli, model  # noqa: E402
from lmjax.config import load_saved_config  # noqa: E402
from lmjax.convert import from_hf, to_hf  # noqa: E402
from tests.convert.test_hf import assert_greedy_matches_transformers  # noqa: E402

SHAPE = dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, initializer_range=0.1, rms_norm_eps=1e-5)
# original_max_position_embeddings=64 puts the 8 frequencies of a 16-wide head in all three bands of the remap
# (wavelengths 6.3 kept; 20 and 63 blended; 199 and up stretched).
LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 10_000.0, "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 64}


@dataclasses.dataclass(frozen=True)
class Arch:
  config: type
  model: type
  changes: dict
  exported_as: str  # the class `to_hf` writes back


ARCHS = {
    "llama3_rope": Arch(transformers.LlamaConfig, transformers.LlamaForCausalLM,
                        dict(rope_parameters=LLAMA3_ROPE, max_position_embeddings=128), "LlamaForCausalLM"),
    "qwen2": Arch(transformers.Qwen2Config, transformers.Qwen2ForCausalLM, {}, "Qwen2ForCausalLM"),
    "qwen2_tied": Arch(transformers.Qwen2Config, transformers.Qwen2ForCausalLM,
                       dict(tie_word_embeddings=True, num_key_value_heads=1), "Qwen2ForCausalLM"),
    "qwen3": Arch(transformers.Qwen3Config, transformers.Qwen3ForCausalLM, dict(head_dim=32), "Qwen3ForCausalLM"),
    "mistral": Arch(transformers.MistralConfig, transformers.MistralForCausalLM, dict(sliding_window=4096),
                    "MistralForCausalLM"),
}
TOLERANCE = 1e-4  # float32 logits of magnitude ~4; observed differences are ~4e-6


def hf_model(name: str):
  """A random float32 model of architecture `name` (seeded), in eval mode, with random biases and norm scales
  (transformers initialises them to 0 and 1, which would let a dropped bias or norm pass unseen)."""
  arch = ARCHS[name]
  torch.manual_seed(0)
  hf = arch.model(arch.config(**(SHAPE | arch.changes))).eval()
  with torch.no_grad():
    for param_name, p in hf.named_parameters():
      if param_name.endswith("bias") or "norm" in param_name:
        p.copy_(torch.randn_like(p) * 0.5 + (1.0 if "norm" in param_name else 0.0))
  return hf


def hf_logits(hf, tokens_bt: np.ndarray) -> np.ndarray:
  with torch.no_grad():
    return hf(torch.from_numpy(tokens_bt.astype(np.int64))).logits.numpy()


def saved(hf, directory) -> str:
  hf.save_pretrained(directory)
  return str(directory)


def random_tokens(batch=2, length=24) -> np.ndarray:
  return np.random.default_rng(0).integers(0, SHAPE["vocab_size"], (batch, length), dtype=np.int32)


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_logits_match_transformers(tmp_path, name):
  hf = hf_model(name)
  config, params = from_hf(saved(hf, tmp_path))
  tokens = random_tokens()
  ours, theirs = np.asarray(model.logits(config, params, tokens)), hf_logits(hf, tokens)
  np.testing.assert_allclose(ours, theirs, atol=TOLERANCE, rtol=0)
  assert np.abs(theirs).max() > 1.0  # the comparison is not between near-zero logits


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_round_trip_hf_lmjax_hf_is_exact(tmp_path, name):
  hf = hf_model(name)
  source = saved(hf, tmp_path / "source")
  out = to_hf(*from_hf(source), str(tmp_path / "out"))
  before = safetensors.numpy.load_file(f"{source}/model.safetensors")
  after = safetensors.numpy.load_file(f"{out}/model.safetensors")
  assert sorted(after) == sorted(before)
  assert all(after[k].dtype == before[k].dtype and np.array_equal(after[k], before[k]) for k in before)
  reloaded, info = transformers.AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
  assert type(reloaded).__name__ == ARCHS[name].exported_as
  assert getattr(reloaded.config, "sliding_window", None) is None  # lmjax attends to the whole prefix
  assert not any(info.values()), info  # nothing missing, unexpected or mismatched
  tokens = random_tokens()
  np.testing.assert_array_equal(hf_logits(reloaded.eval(), tokens), hf_logits(hf, tokens))


def test_llama3_rope_remap_changes_the_logits_the_parity_test_compares(tmp_path):
  """Without the remap lmjax would be far off transformers at these sizes, so the parity test pins it."""
  hf = hf_model("llama3_rope")
  config, params = from_hf(saved(hf, tmp_path))
  tokens = random_tokens()
  config.model.rope_scaling.type = "none"
  unscaled = np.asarray(model.logits(config, params, tokens))
  assert np.abs(unscaled - hf_logits(hf, tokens)).max() > 100 * TOLERANCE


@pytest.mark.parametrize("name", ["llama3_rope", "qwen3"])
def test_greedy_generations_match_transformers(tmp_path, name):
  """The KV-cache path: RoPE's remap at cache positions, the q/k norms and a head size apart from d / n."""
  assert_greedy_matches_transformers(hf_model(name), tmp_path, max_new_tokens=16)


def test_scanned_layout_holds_the_stacked_biases_and_norms(tmp_path):
  for name in ("qwen2", "qwen3"):
    hf = hf_model(name)
    source = saved(hf, tmp_path / name)
    config, params = from_hf(source, scan_layers=True)
    attn = params["blocks"]["attn"]
    stacked = attn["q_bias"][...].shape if name == "qwen2" else attn["q_norm"]["scale"][...].shape
    assert stacked == ((2, 4, 16) if name == "qwen2" else (2, 32))  # [L, n, h] / [L, h]
    tokens = random_tokens()
    np.testing.assert_allclose(model.logits(config, params, tokens), hf_logits(hf, tokens), atol=TOLERANCE, rtol=0)
    out = to_hf(config, params, str(tmp_path / f"{name}_out"))
    before = safetensors.numpy.load_file(f"{source}/model.safetensors")
    after = safetensors.numpy.load_file(f"{out}/model.safetensors")
    assert sorted(after) == sorted(before) and all(np.array_equal(after[k], before[k]) for k in before)


@pytest.mark.parametrize("name", ["llama3_rope", "qwen3", "mistral"])
def test_cli_run_keeps_the_options_from_import_to_export(tmp_path, name):
  """The run's saved config.json carries rope_scaling, head_dim, qk_norm and the architecture the options do
  not name (Mistral), and --to-hf writes them back."""
  hf = hf_model(name)
  cli.main(["convert", "--from-hf", saved(hf, tmp_path / "hf"), "--workdir", str(tmp_path / "run")])
  m = load_saved_config(str(tmp_path / "run")).model
  assert (m.rope_scaling.type, m.head_dim, m.qk_norm, m.hf_architecture) == {
      "llama3_rope": ("llama3", 0, False, ""), "qwen3": ("none", 32, True, ""),
      "mistral": ("none", 0, False, "mistral")}[name]
  cli.main(["convert", "--to-hf", "--workdir", str(tmp_path / "run"), "--out", str(tmp_path / "out")])
  reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
  assert type(reloaded).__name__ == ARCHS[name].exported_as
  tokens = random_tokens()
  np.testing.assert_array_equal(hf_logits(reloaded, tokens), hf_logits(hf, tokens))
