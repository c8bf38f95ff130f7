"""The model: causal and document masking hold, it can fit one batch, mixed precision keeps fp32 weights,
and every parameter carries logical axis names."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from lmjax.losses import next_token
from lmjax.model import ModelConfig, Transformer, param_count

CFG = ModelConfig(vocab_size=97, num_layers=2, embed_dim=32, num_heads=4, num_kv_heads=2, mlp_dim=64)


def _model(cfg=CFG, seed=0):
  return Transformer(cfg, rngs=nnx.Rngs(seed))


def _inputs(batch=2, length=12, seed=0):
  rng = np.random.default_rng(seed)
  tokens = rng.integers(0, CFG.vocab_size, (batch, length)).astype(np.int32)
  positions = np.tile(np.arange(length, dtype=np.int32), (batch, 1))
  return tokens, positions, np.ones((batch, length), np.int32)


def test_changing_a_future_token_leaves_earlier_logits_unchanged():
  model = _model()
  tokens, positions, segments = _inputs()
  changed = tokens.copy()
  changed[:, 7] = (changed[:, 7] + 1) % CFG.vocab_size
  before, after = model(tokens, positions, segments), model(changed, positions, segments)
  np.testing.assert_allclose(before[:, :7], after[:, :7], atol=1e-6)
  assert not np.allclose(before[:, 7:], after[:, 7:], atol=1e-4)


def test_a_token_of_another_packed_document_does_not_change_logits():
  model = _model()
  tokens, _, _ = _inputs(batch=1)
  segments = np.array([[1] * 5 + [2] * 7], np.int32)
  positions = np.array([list(range(5)) + list(range(7))], np.int32)
  changed = tokens.copy()
  changed[0, 2] = (changed[0, 2] + 1) % CFG.vocab_size  # inside document 1
  before, after = model(tokens, positions, segments), model(changed, positions, segments)
  np.testing.assert_allclose(before[:, 5:], after[:, 5:], atol=1e-6)  # document 2 is blind to it
  assert not np.allclose(before[:, 2:5], after[:, 2:5], atol=1e-4)


def test_packed_document_gives_the_same_logits_as_alone():
  model = _model()
  tokens, _, _ = _inputs(batch=1)
  segments = np.array([[1] * 5 + [2] * 7], np.int32)
  positions = np.array([list(range(5)) + list(range(7))], np.int32)
  packed = model(tokens, positions, segments)
  alone = model(tokens[:, 5:], positions[:, 5:], np.ones((1, 7), np.int32))
  np.testing.assert_allclose(packed[:, 5:], alone, atol=1e-5)


def test_model_overfits_one_batch():
  model = _model()
  tokens, positions, segments = _inputs(batch=4, length=16)
  batch = {"tokens": tokens[:, :-1], "targets": tokens[:, 1:], "positions": positions[:, :-1],
           "segment_ids": segments[:, :-1], "loss_mask": np.ones((4, 15), np.float32)}
  graphdef, params = nnx.split(model)
  tx = optax.adam(1e-2)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state):
    def loss(p):
      loss_sum, weight, _ = next_token(nnx.merge(graphdef, p), batch, None)
      return loss_sum / weight
    value, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value

  first = None
  for _ in range(150):
    params, opt_state, value = step(params, opt_state)
    first = value if first is None else first
  assert first > 4.0 and value < 0.1, (first, value)


def test_bfloat16_compute_keeps_float32_master_weights_and_close_logits():
  tokens, positions, segments = _inputs()
  model_f32 = _model()
  model_bf16 = _model(ModelConfig(**{**CFG.__dict__, "dtype": "bfloat16"}))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(nnx.state(model_bf16)))
  logits_f32 = model_f32(tokens, positions, segments)
  logits_bf16 = model_bf16(tokens, positions, segments)
  assert logits_bf16.dtype == jnp.float32
  np.testing.assert_allclose(logits_bf16, logits_f32, atol=0.1)
  assert not np.array_equal(logits_bf16, logits_f32)


def test_every_parameter_has_one_logical_axis_name_per_dimension():
  state = nnx.state(_model())
  variables = jax.tree.leaves(state, is_leaf=lambda x: isinstance(x, nnx.Variable))
  for variable in variables:
    axes = variable.get_metadata()["logical_axes"]
    assert len(axes) == variable[...].ndim


@pytest.mark.parametrize("tie", [False, True])
def test_tied_embeddings_share_the_input_matrix(tie):
  model = _model(ModelConfig(**{**CFG.__dict__, "tie_embeddings": tie}))
  assert hasattr(model, "unembed") != tie


@pytest.mark.parametrize("options, new_attention_params", [
    (dict(head_dim=12), set()), (dict(qkv_bias=True), {"q_bias", "k_bias", "v_bias"}),
    (dict(qk_norm=True), {"q_norm", "k_norm"})])
def test_checkpoint_options_add_their_parameters_and_the_analytic_count_follows(options, new_attention_params):
  """head_dim, qkv_bias and qk_norm (off by default) change only the attention's parameters, as counted."""
  cfg = ModelConfig(**{**CFG.__dict__, **options})
  plain, state = nnx.state(_model()), nnx.state(_model(cfg))
  count = lambda s: sum(x.size for x in jax.tree.leaves(s))
  assert count(state) == param_count(cfg) != count(plain) == param_count(CFG)
  assert set(nnx.to_pure_dict(state)["blocks"][0]["attn"]) == {"q", "k", "v", "o"} | new_attention_params
  tokens, positions, segments = _inputs()
  assert _model(cfg)(tokens, positions, segments).shape == (2, 12, CFG.vocab_size)
