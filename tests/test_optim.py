"""The optimizer from config: AdamW's, SGD's and Muon's updates, weight decay on matrices only (never norm scales
or biases, scanned or not), clipping, bad names."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from configs import base
from lmjax import optim
from lmjax.model.forward import model_definition


def optim_config(**fields):
  config = ml_collections.ConfigDict(dict(name="adamw", lr=0.1, b1=0.9, b2=0.95, eps=1e-8, weight_decay=0.0,
                                          clip_norm=0.0, muon_lr=0.02, muon_beta=0.95))
  config.update(fields)
  return config


PARAMS = {"matrix": jnp.ones((2, 3)), "scale": jnp.ones((3,))}
GRADS = {"matrix": jnp.array([[1e-3, -2.0, 0.5], [0.0, 4.0, -1e-4]]), "scale": jnp.array([0.3, -0.3, 1e-5])}


def one_update(config):
  optimizer = optim.make_optimizer(config, optax.constant_schedule(config.lr))
  updates, _ = optimizer.update(GRADS, optimizer.init(PARAMS), PARAMS)
  return updates


def test_sgd_step_is_the_gradient_times_lr_plus_decay_on_matrices_only():
  updates = one_update(optim_config(name="sgd", weight_decay=0.5))
  np.testing.assert_allclose(updates["matrix"], -0.1 * (GRADS["matrix"] + 0.5 * PARAMS["matrix"]), rtol=1e-6)
  np.testing.assert_allclose(updates["scale"], -0.1 * GRADS["scale"], rtol=1e-6)


def test_adamw_first_step_moves_every_weight_by_lr_whatever_its_gradient():
  """Why RL uses SGD here: Adam's first step is lr·sign(g), so a weight with a 1e-5 gradient moves as far as
  one with a gradient of 4."""
  updates = one_update(optim_config(name="adamw"))
  moved = np.abs(np.concatenate([np.ravel(updates["matrix"]), np.ravel(updates["scale"])]))
  np.testing.assert_allclose(moved[moved > 0], 0.1, rtol=1e-2)


def test_clipping_bounds_the_sgd_step():
  updates = one_update(optim_config(name="sgd", clip_norm=1.0))
  norm = np.sqrt(sum(float(jnp.sum(u ** 2)) for u in updates.values()))
  np.testing.assert_allclose(norm, 0.1, rtol=1e-5)


def test_unknown_optimizer_names_the_field():
  with pytest.raises(ValueError, match=r"optim\.name='lion'.*adamw, sgd, muon"):
    one_update(optim_config(name="lion"))


def newton_schulz_reference(g: np.ndarray, steps: int = 5, coeffs=(3.4445, -4.7750, 2.0315)) -> np.ndarray:
  """Muon's quintic Newton–Schulz orthogonalisation of one matrix, in float64 (Keller Jordan's iteration)."""
  x = g / (np.linalg.norm(g) + 1e-8)
  transposed = x.shape[0] > x.shape[1]
  x = x.T if transposed else x
  for _ in range(steps):
    a = x @ x.T
    x = coeffs[0] * x + (coeffs[1] * a + coeffs[2] * a @ a) @ x
  return x.T if transposed else x


def test_muon_orthogonalises_hidden_matrices_per_layer_and_leaves_the_rest_to_adamw():
  """First step: Nesterov momentum of g is g·(1 + β/(1+β)) (bias-corrected); a stacked q [L, d, n, h] is L
  matrices [d, n·h], an o [n, h, d] one matrix [n·h, d], each orthogonalised and scaled by
  √max(1, fan_out/fan_in); the embedding and norm scales take AdamW's first step, lr·sign(g)."""
  rng = np.random.default_rng(0)
  params = {"blocks": {"attn": {"q": jnp.ones((2, 4, 2, 3)), "o": jnp.ones((2, 3, 4))}},
            "embed": jnp.ones((7, 4)), "final_norm": {"scale": jnp.ones((4,))}}
  grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
  config = optim_config(name="muon", lr=0.01, muon_lr=0.05, muon_beta=0.95)
  optimizer = optim.make_optimizer(config, optax.constant_schedule(config.lr))
  updates, _ = optimizer.update(grads, optimizer.init(params), params)
  nesterov = 1 + 0.95 / 1.95
  q = np.asarray(grads["blocks"]["attn"]["q"], np.float64)
  for layer in range(2):
    want = newton_schulz_reference(nesterov * q[layer].reshape(4, 6)) * np.sqrt(6 / 4)
    np.testing.assert_allclose(updates["blocks"]["attn"]["q"][layer].reshape(4, 6), -0.05 * want, atol=2e-4)
  o = np.asarray(grads["blocks"]["attn"]["o"], np.float64).reshape(6, 4)
  np.testing.assert_allclose(updates["blocks"]["attn"]["o"].reshape(6, 4),
                             -0.05 * newton_schulz_reference(nesterov * o), atol=2e-4)
  singular = np.linalg.svd(np.asarray(updates["blocks"]["attn"]["o"]).reshape(6, 4) / -0.05, compute_uv=False)
  assert 0.5 < singular.min() and singular.max() < 1.5  # orthogonalised: every direction moves about as far
  for leaf in (updates["embed"], updates["final_norm"]["scale"]):
    np.testing.assert_allclose(np.abs(leaf), 0.01, rtol=1e-3)


def _decaying_leaves(**model_fields) -> set[str]:
  """The paths ("blocks/attn/q", "blocks/0/attn_norm/scale", ...) of the model's parameters that decay_mask
  marks, on the real Transformer's parameter tree."""
  config = base.get_config()
  config.model.update(vocab_size=64, num_layers=2, embed_dim=16, num_heads=2, num_kv_heads=1, mlp_dim=32,
                      **model_fields)
  _, params = model_definition(config)
  marked = jax.tree_util.tree_leaves_with_path(optim.decay_mask(params))
  return {"/".join(str(k.key) for k in path if isinstance(k, jax.tree_util.DictKey)) for path, m in marked if m}


@pytest.mark.parametrize("scan_layers", [False, True])
def test_weight_decay_reaches_the_matrices_and_never_a_norm_scale_or_a_bias(scan_layers):
  """Stacked (scan_layers) norm scales are [L, d] and the q/k/v biases [(L,) n, h]: by name they still never
  decay."""
  decaying = _decaying_leaves(scan_layers=scan_layers, qkv_bias=True, qk_norm=True)
  layers = [""] if scan_layers else ["0/", "1/"]
  projections = [f"blocks/{layer}{p}" for layer in layers
                 for p in ("attn/q", "attn/k", "attn/v", "attn/o", "mlp/gate", "mlp/up", "mlp/down")]
  assert decaying == {"embed", "unembed", *projections}


def test_an_untied_plain_model_decays_the_same_matrices_scanned_or_not():
  plain, scanned = _decaying_leaves(), _decaying_leaves(scan_layers=True)
  assert {p.replace("blocks/0/", "blocks/") for p in plain if "blocks/1/" not in p} == scanned


def test_the_scalar_heads_vector_and_bias_never_decay():
  params = {"backbone": {"embed": jnp.ones((5, 4))}, "head": jnp.ones((4,)), "bias": jnp.zeros(())}
  assert optim.decay_mask(params) == {"backbone": {"embed": True}, "head": False, "bias": False}
