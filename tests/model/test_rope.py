"""RoPE from host-side tables equals the closed form, and makes q·k depend only on the offset; Llama 3.1's
frequency remap keeps, blends and stretches the bands it names."""
import jax.numpy as jnp
import numpy as np
import pytest

from lmjax.config import ConfigError
from lmjax.model.layers import RopeScaling, rope, rope_frequencies, rope_tables


def reference_rope(x_btnh: np.ndarray, positions_bt: np.ndarray, theta: float) -> np.ndarray:
  """Rotate-half RoPE in float64, straight from the definition."""
  half = x_btnh.shape[-1] // 2
  angles_bth = positions_bt[..., None] * theta ** (-np.arange(half) / half)
  sin, cos = np.sin(angles_bth)[:, :, None], np.cos(angles_bth)[:, :, None]
  x1, x2 = x_btnh[..., :half], x_btnh[..., half:]
  return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def test_rope_matches_the_closed_form_at_packed_positions():
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, 12, 3, 8)).astype(np.float32)
  positions = np.array([[0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6], list(range(12))], np.int32)
  got = rope(jnp.asarray(x), jnp.asarray(positions), 500.0, num_positions=12)
  np.testing.assert_allclose(np.asarray(got), reference_rope(x, positions, 500.0), atol=2e-6)


def test_rope_scores_depend_only_on_the_offset():
  rng = np.random.default_rng(1)
  q, k = (jnp.asarray(rng.standard_normal((1, 1, 1, 16)).astype(np.float32)) for _ in range(2))
  def score(q_pos: int, k_pos: int) -> float:
    at = lambda x, p: rope(x, jnp.array([[p]], jnp.int32), 10_000.0, num_positions=64)
    return float(jnp.sum(at(q, q_pos) * at(k, k_pos)))
  assert abs(score(7, 3) - score(40, 36)) < 1e-4
  assert abs(score(7, 3) - score(7, 4)) > 1e-3


def test_tables_are_read_only_and_shared():
  sin, cos = rope_tables(32, 8, 10_000.0)
  assert sin.shape == cos.shape == (32, 4) and not sin.flags.writeable
  assert rope_tables(32, 8, 10_000.0)[0] is sin


def test_llama3_scaling_keeps_high_frequencies_stretches_low_ones_and_blends_between():
  scaling = RopeScaling(type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                        original_max_position_embeddings=64)
  plain, scaled = rope_frequencies(16, 10_000.0), rope_frequencies(16, 10_000.0, scaling)
  wavelengths = 2 * np.pi / plain  # 6.3, 20, 63, 199, ...: one kept, two blended, five stretched
  kept, stretched = wavelengths < 64 / 4, wavelengths > 64 / 1
  np.testing.assert_array_equal(scaled[kept], plain[kept])
  np.testing.assert_allclose(scaled[stretched], plain[stretched] / 8.0, rtol=1e-6)
  between = ~kept & ~stretched
  assert (kept.sum(), between.sum(), stretched.sum()) == (1, 2, 5)
  assert np.all((scaled[between] < plain[between]) & (scaled[between] > plain[between] / 8.0))


def test_an_unknown_rope_scaling_type_names_the_field():
  with pytest.raises(ConfigError, match="config.model.rope_scaling.type='yarn'"):
    RopeScaling(type="yarn")
