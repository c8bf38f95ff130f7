"""The engine's KV-cache decoding against the recompute reference: greedy and sampled tokens equal recomputing
the prefix (mixed prompt lengths in one batch), stop tokens end a row, sampling follows its seed and the
softmax, top-k/top-p restrict the support, sharding and scanned layers change nothing, and the stacked cache
is written in place."""
import dataclasses

import jax
import numpy as np
import pytest
from flax import nnx

from lmjax.infer import slots
from lmjax.infer.engine import generate
from lmjax.infer.sampler import SamplingParams, draw_rows, filter_logits, generate_recompute, knobs_of, row_keys
from lmjax.model import ModelConfig, Transformer
from lmjax.model.stacking import stack_layers
from lmjax.sharding import Shard, make_mesh, rules_from_config
from lmjax.train.state import state_shardings
from tests.conftest import tiny_config

CFG = ModelConfig(vocab_size=97, num_layers=2, embed_dim=32, num_heads=4, num_kv_heads=2, mlp_dim=64)


@pytest.fixture(scope="module")
def model():
  graphdef, params = nnx.split(Transformer(CFG, rngs=nnx.Rngs(0)))
  return graphdef, params


def _prompts(lengths, seed=0):
  rng = np.random.default_rng(seed)
  return [rng.integers(1, CFG.vocab_size, n).tolist() for n in lengths]


@pytest.mark.parametrize("lengths", [(1,), (7,), (33,), (1, 5, 17, 40)], ids=str)
def test_greedy_with_cache_equals_recomputing_the_prefix(model, lengths):
  sampling = SamplingParams(max_new_tokens=16)
  prompts = _prompts(lengths)
  assert generate(*model, prompts, sampling) == generate_recompute(*model, prompts, sampling)


@pytest.mark.parametrize("top_k", [0, 5])
def test_sampled_with_cache_equals_recomputing_the_prefix(model, top_k):
  sampling = SamplingParams(max_new_tokens=16, temperature=1.0, top_k=top_k, seed=7)
  prompts = _prompts((2, 9, 33))
  assert generate(*model, prompts, sampling) == generate_recompute(*model, prompts, sampling)


def test_each_row_of_a_mixed_batch_decodes_as_if_alone(model):
  prompts, sampling = _prompts((3, 29)), SamplingParams(max_new_tokens=16)
  together = generate(*model, prompts, sampling)
  assert together == [generate(*model, [p], sampling)[0] for p in prompts]


def test_a_stop_token_ends_its_row_only(model):
  prompts = _prompts((4, 9))
  free = generate(*model, prompts, SamplingParams(max_new_tokens=16))
  stop = free[0][5]
  assert stop not in free[0][:5]
  stopped = generate(*model, prompts, SamplingParams(max_new_tokens=16, stop_ids=(stop,)))
  assert stopped[0] == free[0][:6]
  cut = free[1].index(stop) + 1 if stop in free[1] else 16
  assert stopped[1] == free[1][:cut]


def test_sampling_is_reproducible_from_the_seed_and_differs_across_seeds(model):
  prompts = _prompts((5, 12))
  draw = lambda seed: generate(*model, prompts, SamplingParams(max_new_tokens=16, temperature=1.0, seed=seed))
  assert draw(1) == draw(1)
  assert draw(1) != draw(2)


def test_top_k_one_is_greedy_and_top_k_restricts_the_support(model):
  graphdef, params = model
  prompts = _prompts((6,))
  greedy = generate(graphdef, params, prompts, SamplingParams(max_new_tokens=16))
  assert generate(graphdef, params, prompts, SamplingParams(max_new_tokens=16, temperature=2.0, top_k=1)) == greedy
  logits = nnx.merge(graphdef, params)(np.array(prompts), np.arange(6)[None], np.ones((1, 6), np.int32))[0, -1]
  top3 = set(np.argsort(np.asarray(logits))[-3:].tolist())
  firsts = {generate(graphdef, params, prompts, SamplingParams(max_new_tokens=16, temperature=5.0, top_k=3,
                                                               seed=s))[0][0] for s in range(40)}
  assert firsts <= top3 and len(firsts) > 1


def test_draws_follow_the_softmax_and_never_pick_an_excluded_token():
  probs = np.array([0.5, 0.3, 0.15, 0.05, 0.0], np.float32)
  n = 20_000
  with np.errstate(divide="ignore"):
    logits = np.broadcast_to(np.log(probs), (n, probs.size))  # log 0 = -inf: excluded
  keys = row_keys(np.arange(n, dtype=np.uint32), np.full(n, 3, np.int32))
  counts = np.bincount(np.asarray(draw_rows(logits, keys)), minlength=probs.size)
  expected = n * probs[:4]
  assert counts[4] == 0
  assert np.sum((counts[:4] - expected) ** 2 / expected) < 16.3  # chi-square, 3 dof: p = 0.001


def test_top_p_keeps_the_smallest_set_reaching_p():
  logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]], np.float32))
  kept = lambda p: np.isfinite(np.asarray(filter_logits(logits, 0, p)))[0].tolist()
  assert kept(0.5) == [True, False, False, False]
  assert kept(0.7) == [True, True, False, False]
  assert kept(0.9) == [True, True, True, False]
  assert kept(1.0) == [True, True, True, True]


def test_sharded_sampling_equals_one_device(model):
  config = tiny_config()
  config.model.update(vocab_size=96, num_layers=2, embed_dim=32, num_heads=4, num_kv_heads=2, mlp_dim=64)
  cfg = ModelConfig.from_config(config.model)
  rules = rules_from_config(config.rules)
  prompts, sampling = _prompts((3, 8, 20, 11), seed=1), SamplingParams(max_new_tokens=16)
  graphdef, params = nnx.split(Transformer(cfg, rngs=nnx.Rngs(0)))
  single = generate(graphdef, params, prompts, sampling)
  mesh = make_mesh((2, 2, 2))  # batch over data×fsdp, heads over tensor
  sharded_def, abstract = nnx.split(nnx.eval_shape(lambda: Transformer(cfg, Shard(mesh, rules), rngs=nnx.Rngs(0))))
  sharded_params = jax.device_put(params, state_shardings(abstract, mesh, rules))
  assert generate(sharded_def, sharded_params, prompts, sampling) == single


def test_scanned_layers_decode_the_same_tokens(model):
  """The stacked KV cache of a scanned model ([L, b, S, k, h]) decodes what the per-layer cache does."""
  graphdef, params = model
  scan_cfg = dataclasses.replace(CFG, scan_layers=True)
  scan_def, scan_params = nnx.split(nnx.eval_shape(lambda: Transformer(scan_cfg, rngs=nnx.Rngs(0))))
  nnx.replace_by_pure_dict(scan_params, stack_layers(nnx.to_pure_dict(params)))
  prompts, sampling = _prompts((3, 8, 20), seed=2), SamplingParams(max_new_tokens=12)
  assert generate(scan_def, scan_params, prompts, sampling) == generate(graphdef, params, prompts, sampling)


def _copies_inside_loops(hlo_text: str, shape: str) -> list[str]:
  """The `copy` instructions producing an array of `shape` outside the entry computation (in loop bodies)."""
  found, in_entry = [], False
  for line in hlo_text.splitlines():
    if line and not line.startswith(" "):
      in_entry = line.startswith("ENTRY")
    elif not in_entry and " copy(" in line and f"= {shape}" in line:
      found.append(line.strip())
  return found


def test_scanned_decode_writes_the_stacked_cache_in_place():
  """With scan_layers the stacked [L, b, S, k, h] cache rides in the carry and is written at the layer index:
  the compiled decode loop holds no copy of it (a scan returning each layer's cache as output copied it
  on every token)."""
  scan_cfg = dataclasses.replace(CFG, scan_layers=True)
  graphdef, params = nnx.split(Transformer(scan_cfg, rngs=nnx.Rngs(0)))
  batch, length = 2, 64
  cache, logits = slots.init_state(graphdef, params, batch, length)
  rows = lambda dtype: np.zeros(batch, dtype)
  hlo = slots.decode.lower(graphdef, params, cache, logits, rows(np.int32), rows(bool), rows(np.int32),
                           rows(np.uint32), knobs_of(SamplingParams()), 32).compile().as_text()
  head_dim = CFG.embed_dim // CFG.num_heads
  stacked = f"f32[{CFG.num_layers},{batch},{length},{CFG.num_kv_heads},{head_dim}]"
  assert stacked in hlo
  assert _copies_inside_loops(hlo, stacked) == []


def test_a_prefill_unembeds_only_the_position_it_samples_from():
  jnp = jax.numpy
  model = Transformer(ModelConfig.from_config(tiny_config().model), rngs=nnx.Rngs(0))
  tokens = jnp.asarray(np.random.default_rng(0).integers(0, 1024, (3, 12)), jnp.int32)
  positions = jnp.broadcast_to(jnp.arange(12), (3, 12))
  last = jnp.asarray([11, 4, 7])
  every, _ = model.decode(tokens, positions, model.init_cache(3, 16))
  picked, _ = model.decode(tokens, positions, model.init_cache(3, 16), logits_at_b=last)
  assert picked.shape == (3, 1, 1024)
  np.testing.assert_allclose(picked[:, 0], every[jnp.arange(3), last], rtol=1e-5, atol=1e-6)
