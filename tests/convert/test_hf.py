"""lmjax against transformers' own LlamaForCausalLM on small random models (built here, nothing downloaded):
logits and greedy tokens match, HF -> lmjax -> HF is exact, and `lmjax convert` makes a run that samples."""
import json
import pathlib
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import jax  # noqa: E402
import ml_dtypes  # noqa: E402
import safetensors.numpy  # noqa: E402
from flax import nnx  # noqa: E402

from lmjax import cli, model  # noqa: E402
from lmjax.config import load_saved_config  # noqa: E402
from lmjax.convert import from_hf, to_hf  # noqa: E402
from lmjax.data.tokenizer import Tokenizer  # noqa: E402
from lmjax.infer.engine import generate  # noqa: E402
from lmjax.infer.sampler import SamplingParams  # noqa: E402
from lmjax.train.base_run import load_base_run  # noqa: E402

LLAMA_TOKENIZER = pathlib.Path(__file__).parent / "data" / "mistral_tokenizer.model.v1"
SHAPE = dict(vocab_size=256, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
             initializer_range=0.1, rms_norm_eps=1e-5)
VARIANTS = {"mha": dict(num_key_value_heads=4), "gqa": dict(num_key_value_heads=2, rope_theta=500_000.0),
            "tied": dict(num_key_value_heads=1, tie_word_embeddings=True)}
TOLERANCE = 1e-4  # float32 logits of magnitude ~3; observed differences are ~1e-6


def hf_llama(**changes):
  """A random float32 LlamaForCausalLM (seeded), in eval mode."""
  torch.manual_seed(0)
  config = transformers.LlamaConfig(**(SHAPE | changes))
  return transformers.LlamaForCausalLM(config).eval()


def hf_logits(hf_model, tokens_bt: np.ndarray) -> np.ndarray:
  with torch.no_grad():
    return hf_model(torch.from_numpy(tokens_bt.astype(np.int64))).logits.numpy()


def saved(hf_model, directory: pathlib.Path, **kwargs) -> str:
  hf_model.save_pretrained(directory, **kwargs)
  return str(directory)


def random_tokens(batch=2, length=24, vocab=SHAPE["vocab_size"]) -> np.ndarray:
  return np.random.default_rng(0).integers(0, vocab, (batch, length), dtype=np.int32)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_logits_match_transformers(tmp_path, variant):
  hf_model = hf_llama(**VARIANTS[variant])
  config, params = from_hf(saved(hf_model, tmp_path))
  tokens = random_tokens()
  ours, theirs = np.asarray(model.logits(config, params, tokens)), hf_logits(hf_model, tokens)
  assert ours.shape == (2, 24, SHAPE["vocab_size"])
  np.testing.assert_allclose(ours, theirs, atol=TOLERANCE, rtol=0)
  assert np.abs(theirs).max() > 1.0  # the comparison is not between near-zero logits


def test_sharded_checkpoint_loads_the_same_parameters(tmp_path):
  hf_model = hf_llama(**VARIANTS["gqa"])
  whole = from_hf(saved(hf_model, tmp_path / "whole"))[1]
  sharded_dir = saved(hf_model, tmp_path / "sharded", max_shard_size="40KB")
  assert (tmp_path / "sharded" / "model.safetensors.index.json").exists()
  sharded = from_hf(sharded_dir)[1]
  jax.tree.map(np.testing.assert_array_equal, nnx.to_pure_dict(whole), nnx.to_pure_dict(sharded))


def assert_greedy_matches_transformers(hf_model, tmp_path, max_new_tokens: int) -> None:
  """The imported model's greedy continuations equal transformers' `generate`, prompts of different lengths
  sharing lmjax's batch (its KV-cache path against theirs)."""
  hf_model.generation_config.eos_token_id = None  # run the full length: no early stop on either side
  config, params = from_hf(saved(hf_model, tmp_path))
  graphdef, _ = model.model_definition(config)
  prompts = [[1, 17, 99, 4, 250, 31, 8], [1, 42, 42]]
  ours = generate(graphdef, params, prompts, SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0))
  for prompt, row in zip(prompts, ours):
    ids = torch.tensor([prompt])
    with torch.no_grad():
      theirs = hf_model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=max_new_tokens)
    assert row == theirs[0, len(prompt):].tolist()


def test_greedy_generations_match_transformers(tmp_path):
  assert_greedy_matches_transformers(hf_llama(**VARIANTS["gqa"]), tmp_path, max_new_tokens=20)


@pytest.mark.parametrize("variant", ["gqa", "tied"])
def test_round_trip_hf_lmjax_hf_is_exact(tmp_path, variant):
  hf_model = hf_llama(**VARIANTS[variant])
  source = saved(hf_model, tmp_path / "source")
  out = to_hf(*from_hf(source), str(tmp_path / "out"))
  before = safetensors.numpy.load_file(f"{source}/model.safetensors")
  after = safetensors.numpy.load_file(f"{out}/model.safetensors")
  assert sorted(after) == sorted(before)
  for name in before:
    assert after[name].dtype == before[name].dtype and np.array_equal(after[name], before[name]), name
  reloaded, info = transformers.LlamaForCausalLM.from_pretrained(out, output_loading_info=True)
  assert not any(info.values()), info  # nothing missing, unexpected or mismatched
  tokens = random_tokens()
  np.testing.assert_array_equal(hf_logits(reloaded.eval(), tokens), hf_logits(hf_model, tokens))


def test_scanned_layout_imports_computes_and_exports_the_same_model(tmp_path):
  hf_model = hf_llama(**VARIANTS["gqa"])
  source = saved(hf_model, tmp_path / "source")
  config, params = from_hf(source, scan_layers=True)
  assert params["blocks"]["attn"]["q"][...].shape == (2, 64, 4, 16)  # [L, d, n, h]
  tokens = random_tokens()
  ours = model.logits(config, params, tokens)
  np.testing.assert_allclose(ours, hf_logits(hf_model, tokens), atol=TOLERANCE, rtol=0)
  out = to_hf(config, params, str(tmp_path / "out"))
  before = safetensors.numpy.load_file(f"{source}/model.safetensors")
  after = safetensors.numpy.load_file(f"{out}/model.safetensors")
  assert sorted(after) == sorted(before) and all(np.array_equal(after[k], before[k]) for k in before)


def test_bfloat16_checkpoint_loads_as_float32_master_weights(tmp_path):
  source = pathlib.Path(saved(hf_llama(**VARIANTS["gqa"]), tmp_path))
  tensors = safetensors.numpy.load_file(source / "model.safetensors")
  bf16 = {k: v.astype(ml_dtypes.bfloat16) for k, v in tensors.items()}
  safetensors.numpy.save_file(bf16, source / "model.safetensors", metadata={"format": "pt"})
  config, params = from_hf(str(source))
  embed = np.asarray(params["embed"][...])
  assert embed.dtype == np.float32
  np.testing.assert_array_equal(embed, bf16["model.embed_tokens.weight"].astype(np.float32))


def test_cli_convert_writes_a_run_that_samples_like_transformers(tmp_path, capsys):
  hf_model = hf_llama(**(VARIANTS["gqa"] | {"vocab_size": 32_000}))  # the shipped tokenizer's size
  hf_dir = saved(hf_model, tmp_path / "hf")
  shutil.copyfile(LLAMA_TOKENIZER, tmp_path / "hf" / "tokenizer.model")
  run = str(tmp_path / "run")
  cli.main(["convert", "--from-hf", hf_dir, "--workdir", run])
  assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["vocab_size"] == 32_000
  capsys.readouterr()
  prompt = "Once upon a time"
  cli.main(["sample", "--workdir", run, "--prompt", prompt, "--config.sample.temperature=0",
            "--config.sample.max_new_tokens=12"])
  printed = capsys.readouterr().out.rstrip("\n")

  tok = Tokenizer(str(tmp_path / "run" / "tokenizer.model"))
  ids = torch.tensor([[tok.bos_id, *tok.encode(prompt)]])
  with torch.no_grad():  # greedy, stopping at </s> like lmjax sample
    new = hf_model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=12)
  assert printed == prompt + tok.decode([i for i in new[0, ids.shape[1]:].tolist() if i != tok.eos_id])

  config = load_saved_config(run)
  _, base = load_base_run(config, run, "sft.base_workdir")  # what `lmjax sft` starts from
  assert base.step == 0 and base.tokenizer.vocab_size == 32_000
  np.testing.assert_array_equal(np.asarray(base.params["embed"][...]), from_hf(hf_dir)[1]["embed"][...])


def test_cli_to_hf_exports_the_run_with_its_tokenizer(tmp_path):
  hf_model = hf_llama(**(VARIANTS["tied"] | {"vocab_size": 32_000}))
  hf_dir = saved(hf_model, tmp_path / "hf")
  shutil.copyfile(LLAMA_TOKENIZER, tmp_path / "hf" / "tokenizer.model")
  cli.main(["convert", "--from-hf", hf_dir, "--workdir", str(tmp_path / "run")])
  cli.main(["convert", "--to-hf", "--workdir", str(tmp_path / "run"), "--out", str(tmp_path / "out")])
  exported = json.loads((tmp_path / "out" / "config.json").read_text())
  assert (exported["bos_token_id"], exported["eos_token_id"], exported["tie_word_embeddings"]) == (1, 2, True)
  assert (tmp_path / "out" / "tokenizer.model").read_bytes() == LLAMA_TOKENIZER.read_bytes()
  reloaded = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "out").eval()
  tokens = random_tokens(vocab=32_000)
  np.testing.assert_array_equal(hf_logits(reloaded, tokens), hf_logits(hf_model, tokens))
