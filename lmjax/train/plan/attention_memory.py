"""One layer's attention memory per device, for `lmjax plan`: the implementation the plan compiles (blocked
or xla on CPU, which hold [b, n, t, s] scores) against a fused kernel that holds none.

The plan compiles on CPU, where cuDNN cannot compile and splash attention's Pallas kernel only runs
interpreted. So each figure is one layer's attention forward + backward compiled alone on one CPU device at
the per-device shapes (rows of one micro-batch, heads after the tensor split): XLA:CPU's buffers, an
estimate. Interpreted, splash holds its HBM arrays (q, k, v, the output, their gradients, the log-sum-exp
rows) plus the interpreter's copies, none of them [t, t]; it stands in for cuDNN's flash attention on GPUs,
which holds the same kinds of arrays.
"""
import dataclasses

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding

from lmjax import backend
from lmjax.model.layers import self_attend
from lmjax.model.transformer import ModelConfig
from lmjax.sharding import Shard, rules_from_config
from lmjax.train.hardware import Chip

FUSED_STAND_IN = "splash"  # the fused kernel that compiles on CPU (interpreted)


@dataclasses.dataclass(frozen=True)
class AttentionMemory:
  rows: int  # per device: one micro-batch's rows over the batch axes
  seq_len: int
  heads: int  # query heads per device
  kv_heads: int  # key/value heads per device (repeated to `heads` where the split does not divide them)
  chip_runs: str  # the implementation model.attention resolves to on the planned chip
  layer_bytes: dict  # implementation -> bytes of one layer's attention forward + backward per device


def per_device_shape(config, mesh) -> tuple[int, int, int]:
  """(rows, query heads, key/value heads) one device attends over in a micro-batch, by config.rules."""
  m, t = config.model, config.train
  shard = Shard(mesh, rules_from_config(config.rules))
  names = ("batch", None, "act_heads", None)
  q_shape = (t.batch_size // t.grad_accum_steps, t.seq_len, m.num_heads, ModelConfig.from_config(m).head_dim)
  rows, _, heads, _ = NamedSharding(mesh, shard.spec(names, q_shape)).shard_shape(q_shape)
  kv_heads = m.num_kv_heads * heads / m.num_heads
  return rows, heads, int(kv_heads) if kv_heads == int(kv_heads) else heads


def layer_bytes(implementation: str, rows: int, seq_len: int, heads: int, kv_heads: int, head_dim: int,
                dtype) -> int:
  """Bytes of one layer's attention forward + backward (arguments, outputs, temporaries) compiled on one
  CPU device: q, k, v and the output's cotangent in, the output and dq, dk, dv out."""
  q = jax.ShapeDtypeStruct((rows, seq_len, heads, head_dim), dtype)
  kv = jax.ShapeDtypeStruct((rows, seq_len, kv_heads, head_dim), dtype)
  segment_ids = jax.ShapeDtypeStruct((rows, seq_len), jnp.int32)

  def forward_backward(q, k, v, segment_ids, cotangent):
    out, vjp = jax.vjp(lambda q, k, v: self_attend(q, k, v, segment_ids, implementation), q, k, v)
    return out, vjp(cotangent)
  mem = jax.jit(forward_backward).lower(q, kv, kv, segment_ids, q).compile().memory_analysis()
  return mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes


def attention_memory(config, mesh, chip: Chip) -> AttentionMemory:
  """One layer's attention memory per device with what the plan compiles and with a fused kernel."""
  m = config.model
  rows, heads, kv_heads = per_device_shape(config, mesh)
  compiled = backend.attention_implementation(m.attention, "cpu")
  implementations = dict.fromkeys((compiled, FUSED_STAND_IN))
  head_dim = ModelConfig.from_config(m).head_dim
  sizes = {name: layer_bytes(name, rows, config.train.seq_len, heads, kv_heads, head_dim,
                             jnp.dtype(m.dtype)) for name in implementations}
  return AttentionMemory(rows, config.train.seq_len, heads, kv_heads,
                         backend.attention_implementation(m.attention, chip.platform), sizes)


def as_json(memory: AttentionMemory) -> dict:
  return {"rows_per_device": memory.rows, "seq_len": memory.seq_len, "heads_per_device": memory.heads,
          "kv_heads_per_device": memory.kv_heads, "chip_runs": memory.chip_runs,
          "layer_bytes_per_device": {name: int(n) for name, n in memory.layer_bytes.items()}}


def report_lines(memory: AttentionMemory, chip: Chip, gib) -> list[str]:
  """The text `lmjax plan` prints: one line per implementation, the one the chip runs marked."""
  notes = {FUSED_STAND_IN: "Pallas kernel interpreted on CPU: no [t, t] scores"}
  if memory.chip_runs == "cudnn":
    notes[FUSED_STAND_IN] += f"; stands in for cudnn, which {chip.name} runs (it compiles only on GPU)"
  lines = [f"attention, one layer's forward + backward per device ({memory.rows} rows x {memory.seq_len} "
           f"tokens, {memory.heads} query / {memory.kv_heads} key-value heads; compiled alone on CPU, an estimate)"]
  for name, n in memory.layer_bytes.items():
    label = name + (f" ({chip.name} runs it)" if name == memory.chip_runs else "")
    lines.append(f"  {label:<26}{gib(n):>12}   {notes.get(name, 'holds [b, n, t, s] scores')}")
  return lines
