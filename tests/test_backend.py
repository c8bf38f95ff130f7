"""The backend dispatch: CPU tuning (allocator, the unembedding's copied transpose, blocked attention) runs
only on CPU, and `model.attention=auto` picks each backend's kernel; both branches pinned on this CPU. The
persistent compilation cache serves a second process."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from lmjax import backend, cli
from lmjax.model.layers import dense_wide


@pytest.mark.parametrize("variable, platform", [("cpu", "cpu"), ("cuda", "gpu"), ("tpu", "tpu"), ("", "cpu")])
def test_the_platform_is_known_before_jax_starts(monkeypatch, variable, platform):
  monkeypatch.setenv("JAX_PLATFORMS", variable)  # "": none asked for, and this machine has no plugin
  assert backend.expected_platform() == platform


@pytest.mark.parametrize("variable, applied", [("cpu", True), ("tpu", False), ("cuda", False)])
def test_the_allocator_setting_is_made_only_for_cpu(monkeypatch, variable, applied):
  calls = []
  monkeypatch.setenv("JAX_PLATFORMS", variable)
  monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append(True))
  with pytest.raises(SystemExit):
    cli.main(["plan", "--help"])
  assert bool(calls) == applied


def _unembedding_gradient_primitives(monkeypatch, platform) -> set[str]:
  monkeypatch.setattr(backend, "platform", lambda: platform)
  grad = jax.grad(lambda x, w: jnp.sum(dense_wide(x, w)), argnums=(0, 1))
  jaxpr = jax.make_jaxpr(grad)(jnp.ones((2, 3, 4)), jnp.ones((4, 8)))
  return {str(e.primitive) for e in jaxpr.jaxpr.eqns} | {
      str(e.primitive) for eqn in jaxpr.jaxpr.eqns for sub in jax.core.jaxprs_in_params(eqn.params)
      for e in sub.eqns}


def test_the_copied_transpose_runs_on_cpu_only(monkeypatch):
  assert "optimization_barrier" in _unembedding_gradient_primitives(monkeypatch, "cpu")
  for platform in ("gpu", "tpu"):
    assert "optimization_barrier" not in _unembedding_gradient_primitives(monkeypatch, platform)


@pytest.mark.parametrize("platform, implementation", [("cpu", "blocked"), ("gpu", "cudnn"), ("tpu", "splash")])
def test_auto_attention_is_each_backends_kernel(monkeypatch, platform, implementation):
  monkeypatch.setattr(backend, "platform", lambda: platform)
  assert backend.attention_implementation("auto") == implementation
  assert backend.attention_implementation("xla") == "xla"
  assert backend.attention_implementation("auto", "tpu") == "splash"  # for a named backend (lmjax plan's chip)
  assert backend.pallas_interpret() == (platform != "tpu")  # Pallas TPU kernels compile only on TPU


def test_an_unknown_attention_is_an_error_naming_the_field():
  with pytest.raises(ValueError, match="config.model.attention='flash'"):
    backend.attention_implementation("flash")


def test_the_compilation_cache_keeps_compiled_programs_across_processes(tmp_path):
  script = ("import jax, jax.numpy as jnp; from lmjax import backend; "
            f"backend.use_compilation_cache({str(tmp_path)!r}); "
            "jax.config.update('jax_persistent_cache_min_compile_time_secs', 0); "
            "print(jax.jit(lambda x: jnp.sin(x) @ x.T)(jnp.ones((64, 64))).sum())")
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  first = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
  cached = sorted(p.name for p in tmp_path.iterdir())
  assert cached, "nothing was written to the cache"
  second = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
  assert second.stdout == first.stdout and sorted(p.name for p in tmp_path.iterdir()) == cached
