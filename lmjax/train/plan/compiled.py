"""Each step `lmjax plan` checks, compiled ahead of time from shapes alone (no array is allocated), and the
bytes per device XLA's buffer assignment gives it: the train step (a `Plan`), the eval step, RL's scoring
pass and RL's rollout program."""
import dataclasses
import math
import time

import jax
import jax.numpy as jnp
from jax.sharding import SingleDeviceSharding

from lmjax import losses
from lmjax.config import ConfigError
from lmjax.model.transformer import param_count
from lmjax.train.hardware import Chip
from lmjax.train.loop import model_flops_per_step
from lmjax.train.setup import TrainSetup, build_train_setup
from lmjax.train.step import make_eval_step, make_train_step


@dataclasses.dataclass(frozen=True)
class Plan:
  """One compiled configuration. Memory in bytes per device; FLOPs per device per step."""
  mesh: tuple[int, int, int]
  params: int  # from shapes and shardings: the trained ones (LoRA: the adapters)
  opt_state: int  # from shapes and shardings
  batch: int  # from shapes and shardings
  arguments: int  # compiled: everything the step reads (state, batch; jit drops an unused rng)
  temporaries: int  # compiled: activations kept for the backward pass, gradients, workspace
  total: int  # compiled: arguments + temporaries + outputs not aliased to (donated) arguments
  replicated_fraction: float
  compile_seconds: float
  flops: float | None = None  # compiled cost analysis (None until measured)
  model_flops: float = 0.0  # 6·N·T + attention (PaLM's model FLOPs), per device
  six_nt: float = 0.0  # 6·N·T alone, per device
  frozen: int = 0  # LoRA's frozen base, from shapes and shardings (0 for a full run)

  @property
  def gradients(self) -> int:
    """The gradients' share of the temporaries: one value per parameter, sharded like it."""
    return self.params


def fits(plan: Plan, chip: Chip) -> bool:
  return plan.total <= chip.hbm_bytes


def compiled_bytes(memory) -> int:
  """Bytes per device of a compiled program's memory analysis: arguments, outputs not aliased to (donated)
  arguments, temporaries."""
  return (memory.argument_size_in_bytes + memory.output_size_in_bytes - memory.alias_size_in_bytes
          + memory.temp_size_in_bytes)


def bytes_per_device(shapes_tree, shardings_tree) -> int:
  """Bytes one device holds of a tree of arrays: each leaf's shard shape × its item size."""
  return sum(math.prod(s.shard_shape(x.shape)) * x.dtype.itemsize
             for x, s in zip(jax.tree.leaves(shapes_tree), jax.tree.leaves(shardings_tree)))


_TOKEN_KEYS = ("tokens", "positions", "segment_ids", "targets")  # int32 [b, t]; other [b, t] keys are float32
_ROW_KEYS = ("chosen_index", "rejected_index")  # int32 [b]: one position per row
_ROW_VALUES = ("ref_chosen_logprob", "ref_rejected_logprob")  # float32 [b]: one value per row


def train_loss(config) -> losses.Loss:
  """config.train.loss's entry of the loss table."""
  if config.train.loss not in losses.LOSSES:
    raise ConfigError(f"config.train.loss={config.train.loss!r}; use one of {', '.join(losses.LOSSES)}")
  return losses.LOSSES[config.train.loss]


def abstract_batch(config, batch_sharding) -> dict:
  """The batch of config.train.loss as sharded shapes: [batch_size, seq_len] per key (per row for indices)."""
  rows, seq = config.train.batch_size, config.train.seq_len
  def shape(key):
    if key in _ROW_KEYS or key in _ROW_VALUES:
      return jax.ShapeDtypeStruct((rows,), jnp.int32 if key in _ROW_KEYS else jnp.float32, sharding=batch_sharding)
    return jax.ShapeDtypeStruct((rows, seq), jnp.int32 if key in _TOKEN_KEYS else jnp.float32,
                                sharding=batch_sharding)
  return {key: shape(key) for key in train_loss(config).batch_keys}


def compile_step(config, devices) -> tuple[TrainSetup, dict, jax.stages.Compiled, float]:
  """(setup, abstract batch, compiled step, compile seconds): the train loop's step for config.train.loss,
  lowered from shapes."""
  loss = train_loss(config)
  setup = build_train_setup(config, devices=devices, scalar_head=loss.scalar_head)
  batch = abstract_batch(config, setup.batch_sharding)
  step = make_train_step(setup.graphdef, loss.fn, setup.optimizer, setup.shardings,
                         batch_sharding=setup.batch_sharding, grad_accum_steps=config.train.grad_accum_steps,
                         lr_schedule=setup.schedule, frozen=setup.abstract_frozen())
  start = time.perf_counter()
  rng = jax.eval_shape(lambda: jax.random.key(0))
  compiled = step.lower(setup.abstract_state, batch, rng).compile()
  return setup, batch, compiled, time.perf_counter() - start


def measure_memory(config, devices) -> Plan:
  """Compiles `config`'s step on `devices` and reads its memory (FLOPs are left to `measure_flops`)."""
  setup, batch, compiled, seconds = compile_step(config, devices)
  mem = compiled.memory_analysis()
  t = config.train
  tokens, model = t.batch_size * t.seq_len / len(devices), setup.model_config
  matmul_params = param_count(model) - (0 if model.tie_embeddings else model.vocab_size * model.embed_dim)
  return Plan(
      mesh=tuple(setup.mesh.shape.values()),
      params=bytes_per_device(setup.abstract_state.params, setup.shardings.params),
      opt_state=bytes_per_device(setup.abstract_state.opt_state, setup.shardings.opt_state),
      batch=bytes_per_device(batch, {k: v.sharding for k, v in batch.items()}),
      arguments=mem.argument_size_in_bytes, temporaries=mem.temp_size_in_bytes,
      total=compiled_bytes(mem),
      replicated_fraction=setup.replicated_fraction, compile_seconds=seconds,
      model_flops=model_flops_per_step(model, t.loss, t.batch_size, t.seq_len) / len(devices),
      six_nt=6 * matmul_params * tokens,
      frozen=bytes_per_device(setup.abstract_model_params, setup.model_shardings) if setup.lora else 0)


def eval_step_bytes(config, devices) -> int:
  """Bytes per device of the compiled eval step, micro-batched like the train step (arguments, outputs not
  aliased to them, temporaries)."""
  loss = train_loss(config)
  setup = build_train_setup(config, devices=devices, scalar_head=loss.scalar_head)
  step = make_eval_step(setup.graphdef, loss.fn, setup.shardings.params, batch_sharding=setup.batch_sharding,
                        micro_batches=config.train.grad_accum_steps, frozen=setup.abstract_frozen())
  batch = abstract_batch(config, setup.batch_sharding)
  return compiled_bytes(step.lower(setup.abstract_state.params, batch).compile().memory_analysis())


def score_step_bytes(config, devices) -> int:
  """Bytes per device of RL's scoring pass (`experience.make_scorer`: the policy's log-probs, and values with
  a critic) over one chunk of `settings.score_batch(config)` rows, as RL compiles it."""
  from lmjax.rl import experience
  from lmjax.rl.advantages import ESTIMATORS
  from lmjax.rl.settings import score_batch
  critic = ESTIMATORS[config.rl.advantage].uses_values
  setup = build_train_setup(config, devices=devices, scalar_head=critic)
  rows = {k: jax.ShapeDtypeStruct((score_batch(config), config.train.seq_len), jnp.int32,
                                  sharding=setup.batch_sharding) for k in _TOKEN_KEYS}
  score = experience.make_scorer(setup.graphdef, with_values=critic)
  params = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        setup.abstract_model_params, setup.model_shardings)  # LoRA scores merged parameters
  return compiled_bytes(score.lower(params, rows).compile().memory_analysis())


def rollout_memory(config, device, compiler_options: dict | None = None):
  """(cache length, memory analysis) of the decode program RL's rollout engine runs on one device, compiled
  from shapes: rollout.batch slots whose cache holds RL's longest row (train.seq_len + 1 tokens), in chunks
  of rollout.max_new_tokens steps. (Its per-slot prefill is one row: far smaller.)"""
  from lmjax.infer import engine, sampler, slots
  from lmjax.model import model_definition
  g = config.rollout
  length = engine.cache_length(config.train.seq_len + 1 - g.max_reply_tokens, g.max_reply_tokens)
  graphdef, params = model_definition(config)
  on_device = SingleDeviceSharding(device)
  shaped = lambda tree: jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=on_device), tree)
  params = shaped(params)
  cache, logits = shaped(jax.eval_shape(lambda p: slots.init_state(graphdef, p, g.batch, length), params))
  knobs = sampler.knobs_of(sampler.SamplingParams(temperature=g.temperature, top_k=g.top_k))
  rows = lambda dtype: jax.ShapeDtypeStruct((g.batch,), dtype, sharding=on_device)
  lowered = slots.decode.lower(graphdef, params, cache, logits, rows(jnp.int32), rows(bool), rows(jnp.int32),
                               rows(jnp.uint32), knobs, g.max_new_tokens)
  return length, lowered.compile(compiler_options=compiler_options).memory_analysis()


def rollout_bytes(config, device) -> int:
  """Bytes of `rollout_memory`'s program: arguments + temporaries."""
  memory = rollout_memory(config, device)[1]
  return memory.argument_size_in_bytes + memory.temp_size_in_bytes
