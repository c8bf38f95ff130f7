"""LoRA (lmjax.train.lora): adapters on the chosen projections only, a merge equal to running the low-rank
path beside the frozen weight, LoRA SFT through the real CLI (trainable count, exact resume, a loaded run
merged into its base) and the plan of LoRA against full fine-tuning."""
import json
import shutil

import jax
import numpy as np
import pytest
from flax import nnx

from configs import base
from lmjax.model import init_params, logits
from lmjax.model.layers import dense
from lmjax.train import lora
from lmjax.train.metrics import read_metrics
from tests.train.conftest import run_stage


def tiny(scan_layers=False, **lora_fields):
  config = base.get_config()
  config.model.update(vocab_size=64, num_layers=2, embed_dim=16, num_heads=2, num_kv_heads=1, mlp_dim=32,
                      scan_layers=scan_layers)
  config.model.lora.update(rank=4, alpha=8.0, **lora_fields)
  return config


def random_adapters(spec, params, seed=1):
  """Adapters whose B is random too (a fresh B is zero), so the merge changes the model."""
  adapters = lora.init_adapters(spec, params, seed)
  keys = iter(jax.random.split(jax.random.key(seed), 64))
  return jax.tree.map(lambda x: 0.1 * jax.random.normal(next(keys), x.shape, x.dtype), adapters)


@pytest.mark.parametrize("scan_layers", [False, True])
def test_adapters_cover_exactly_the_targets_with_rank_times_fan_in_plus_fan_out(scan_layers):
  config = tiny(scan_layers, targets=("q", "o", "down"))
  spec = lora.from_config(config.model)
  adapters = lora.init_adapters(spec, init_params(config, 0), seed=0)
  d, n, h, f, r, layers = 16, 2, 8, 32, 4, 2
  assert lora.trainable_count(adapters) == layers * r * ((d + n * h) + (n * h + d) + (f + d))
  names = {path[-2] for path, _ in nnx.to_flat_state(adapters)}
  assert names == {"q", "o", "down"}
  assert all(not np.any(np.asarray(v.get_value())) for p, v in nnx.to_flat_state(adapters) if p[-1] == "b")


def test_fresh_adapters_leave_the_base_model_unchanged():
  config = tiny(targets=("q", "k", "v", "o", "gate", "up", "down"))
  params = init_params(config, 0)
  merged = lora.from_config(config.model).merge(params, lora.init_adapters(lora.from_config(config.model), params, 0))
  tokens = np.arange(12).reshape(2, 6) % 64
  np.testing.assert_array_equal(logits(config, merged, tokens), logits(config, params, tokens))


@pytest.mark.parametrize("name,in_dims", [("q", 1), ("o", 2), ("up", 1)])
def test_a_merged_projection_equals_the_frozen_weight_plus_the_low_rank_path(name, in_dims):
  """x·(W + s·A·B) = x·W + s·(x·A)·B: merging is the same as running the adapter beside the frozen weight."""
  config = tiny(targets=(name,))
  spec = lora.from_config(config.model)
  params = init_params(config, 0)
  adapters = random_adapters(spec, params)
  module = "mlp" if name == "up" else "attn"
  w = params["blocks"][1][module][name].get_value()
  a, b = (adapters["blocks"][1][module][name][k].get_value() for k in ("a", "b"))
  merged = spec.merge(params, adapters)["blocks"][1][module][name].get_value()
  x = jax.random.normal(jax.random.key(2), (2, 3, *w.shape[:in_dims]))
  slow = dense(x, w, in_dims) + spec.scale * dense(dense(x, a, in_dims), b)
  np.testing.assert_allclose(dense(x, merged, in_dims), slow, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scan_layers", [False, True])
def test_merged_logits_equal_those_of_weights_merged_by_hand_in_numpy(scan_layers):
  config = tiny(scan_layers, targets=("q", "v", "o", "gate"))
  spec = lora.from_config(config.model)
  params = init_params(config, 0)
  adapters = random_adapters(spec, params)
  by_hand = nnx.to_pure_dict(params)
  flat = {p[:-1]: {} for p, _ in nnx.to_flat_state(adapters)}
  for p, v in nnx.to_flat_state(adapters):
    flat[p[:-1]][p[-1]] = np.asarray(v.get_value())
  for path, pair in flat.items():
    node = by_hand
    for key in path[:-1]:
      node = node[key]
    w = np.asarray(node[path[-1]])
    lead = 1 if scan_layers else 0
    r = pair["a"].shape[-1]
    a = pair["a"].reshape(*pair["a"].shape[:lead], -1, r)
    b = pair["b"].reshape(*pair["b"].shape[:lead], r, -1)
    node[path[-1]] = w + spec.scale * np.matmul(a, b).reshape(w.shape)
  tokens = (np.arange(16).reshape(2, 8) * 7) % 64
  got, want = logits(config, spec.merge(params, adapters), tokens), logits(config, by_hand, tokens)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  assert not np.allclose(got, logits(config, params, tokens), atol=1e-3)  # the adapters did change the model


def test_unknown_targets_and_a_negative_rank_name_the_field():
  from lmjax.config import ConfigError
  for fields in ({"targets": ("q", "qkv")}, {"rank": -1}):
    config = tiny()
    config.model.lora.update(**fields)
    with pytest.raises(ConfigError, match=r"config\.model\.lora"):
      lora.from_config(config.model)


@pytest.fixture(scope="module")
def lora_sft(uninterrupted, tokens_workdir, tmp_path_factory):
  """(workdir, flags) of 8 LoRA SFT steps (rank 4 on q and v) from the tiny pretrained run, checkpointed
  every 4 steps."""
  data = tmp_path_factory.mktemp("lora_data") / "conversations.jsonl"
  rng = np.random.default_rng(0)
  with open(data, "w") as f:
    for _ in range(60):
      a, b = rng.integers(1, 9, 2)
      f.write(json.dumps({"messages": [{"role": "user", "content": f"What is {a} plus {b}?"},
                                       {"role": "assistant", "content": f"{a} plus {b} is {a + b}."}]}) + "\n")
  flags = (f"--config.sft.base_workdir={uninterrupted}", f"--config.sft.conversations={data}",
           "--config.sft.val_fraction=0.2", "--config.train.steps=8", "--config.eval.every_steps=4",
           "--config.log.tensorboard=false", "--config.model.lora.rank=4", "--config.model.lora.targets=('q','v')")
  workdir = tmp_path_factory.mktemp("lora_sft")
  run_stage("sft", workdir, tokens_workdir, *flags)
  return workdir, flags


def test_lora_sft_trains_only_the_adapters_and_records_its_base(lora_sft, uninterrupted):
  workdir, _ = lora_sft
  summary = json.loads((workdir / "summary.json").read_text())
  d, n, h, k, layers, r = 64, 4, 16, 2, 2, 4  # tests/train/tiny_config.py
  assert summary["trainable_params"] == layers * r * ((d + n * h) + (d + k * h))
  assert summary["trainable_params"] < summary["params"] / 50
  metrics = read_metrics(workdir)
  assert metrics[-1]["loss"] < metrics[0]["loss"]
  saved = json.loads((workdir / "config.json").read_text())
  assert saved["model"]["lora"]["base_workdir"] == str(uninterrupted)


def test_lora_sft_resumes_exactly_from_its_adapter_checkpoint(lora_sft, tokens_workdir, tmp_path):
  workdir, flags = lora_sft
  resumed = tmp_path / "resumed"
  shutil.copytree(workdir, resumed)
  shutil.rmtree(resumed / "checkpoints" / "8")  # as if stopped after the step-4 checkpoint
  run_stage("sft", resumed, tokens_workdir, *flags)
  assert json.loads((resumed / "summary.json").read_text())["resumed_from"] == 4
  losses = lambda w: [(m["step"], m["loss"], m.get("val_loss")) for m in read_metrics(w)]
  assert losses(resumed) == losses(workdir)  # exactly, step for step


def test_a_loaded_lora_run_is_its_base_with_the_checkpointed_adapters_merged(lora_sft, uninterrupted):
  from lmjax.config import load_saved_config
  from lmjax.infer.load import latest_params, load_model
  from lmjax.train import checkpoint
  from lmjax.train.setup import build_model_setup
  workdir, _ = lora_sft
  config = load_saved_config(str(workdir))
  loaded = load_model(config, str(workdir))
  base_dir = str(uninterrupted)
  base_params, _ = latest_params(load_saved_config(base_dir), build_model_setup(config), base_dir)
  spec = lora.from_config(config.model)
  shapes = jax.eval_shape(lambda: lora.init_adapters(spec, base_params, 0))
  manager = checkpoint.make_manager(str(workdir / "checkpoints"), keep=2)
  one_device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  step, adapters = checkpoint.newest_params(manager, shapes, jax.tree.map(lambda _: one_device, shapes))
  assert step == loaded.step == 8
  assert np.any(np.asarray(jax.tree.leaves(adapters)[1]))  # the B's trained away from zero
  tokens = (np.arange(32).reshape(2, 16) * 5) % 1024
  np.testing.assert_allclose(logits(config, loaded.params, tokens),
                             logits(config, spec.merge(*jax.device_get((base_params, adapters))), tokens), rtol=1e-5, atol=1e-5)
