"""The one dispatch for backend-specific code: which tuning and which kernels run on which backend.

XLA:CPU gets three tricks measured on it (the glibc allocator setting, the unembedding's copied transpose,
query-blocked causal attention); on GPU and TPU they would only cost copies or block fusion, so there the
plain ops run, and attention goes to the backend's fused kernel: cuDNN's flash attention on GPU
(`layers.fused_attend`), Pallas splash attention on TPU (`lmjax/model/splash.py`, under shard_map), neither
of which holds the [t, t] scores in memory.
"""
import importlib.util
import os

import jax

ATTENTION = ("auto", "blocked", "xla", "cudnn", "splash")  # model.attention's choices
FUSED_ATTENTION = ("cudnn", "splash")  # the flash kernels: O(t) memory per query row, no [t, t] scores
_AUTO_ATTENTION = {"cpu": "blocked", "gpu": "cudnn", "tpu": "splash"}
_ACCELERATOR_PLUGINS = {"gpu": ("jax_cuda12_plugin", "jax_cuda13_plugin", "jax_rocm60_plugin"), "tpu": ("libtpu",)}


def expected_platform() -> str:
  """The backend JAX will pick, decided without starting JAX (for settings that must precede its threads):
  JAX_PLATFORMS's first entry, else an installed accelerator plugin's, else cpu."""
  requested = os.environ.get("JAX_PLATFORMS", "").split(",")[0].strip().lower()
  if requested:
    return {"cuda": "gpu", "rocm": "gpu"}.get(requested, requested)
  for platform, modules in _ACCELERATOR_PLUGINS.items():
    if any(importlib.util.find_spec(m) for m in modules):
      return platform
  return "cpu"


def platform() -> str:
  """The backend JAX runs on: cpu, gpu or tpu."""
  return jax.default_backend()


def cpu_tuning() -> bool:
  """Whether the XLA:CPU tricks apply (decided when a function is traced)."""
  return platform() == "cpu"


def use_compilation_cache(directory: str) -> None:
  """Keeps compiled programs in `directory` across processes, so a rerun, a resumed run or the next stage on
  the same shapes skips compiling ("" leaves JAX's default: no persistent cache)."""
  if directory:
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)  # not the many sub-second programs


def attention_implementation(requested: str, on: str | None = None) -> str:
  """model.attention resolved for backend `on` (default: this one): `auto` is blocked on CPU, cuDNN's flash
  attention on GPU and splash attention on TPU; any other choice is taken as given."""
  if requested not in ATTENTION:
    raise ValueError(f"config.model.attention={requested!r}; use one of {', '.join(ATTENTION)}")
  return _AUTO_ATTENTION.get(on or platform(), "xla") if requested == "auto" else requested


def pallas_interpret() -> bool:
  """Whether the TPU Pallas kernels (splash attention) run as plain JAX ops: everywhere but on TPU, where
  they compile to Mosaic (interpreted they are slow, for tests on CPU)."""
  return platform() != "tpu"
