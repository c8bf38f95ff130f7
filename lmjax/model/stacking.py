"""The one conversion between the two parameter layouts of the blocks (see `model.scan_layers`):

    per-layer: {"blocks": {0: {"attn": {"q": [d, n, h]}, ...}, 1: ...}, ...}
    scanned:   {"blocks": {"attn": {"q": [L, d, n, h]}, ...}, ...}

on pure parameter dicts (`nnx.to_pure_dict`); the other entries pass through unchanged.
"""
import jax
import numpy as np


def stack_layers(params: dict) -> dict:
  """The scanned layout of per-layer parameters: block i's leaves become row i of [L, ...] arrays."""
  layers = params["blocks"]
  ordered = [layers[i] for i in sorted(layers)]
  return {**params, "blocks": jax.tree.map(lambda *xs: np.stack(xs), *ordered)}


def unstack_layers(params: dict, num_layers: int) -> dict:
  """The per-layer layout of scanned parameters; shape-only leaves (ShapeDtypeStruct) lose their [L] axis."""
  def take(x, i):
    return jax.ShapeDtypeStruct(x.shape[1:], x.dtype) if isinstance(x, jax.ShapeDtypeStruct) else x[i]
  stacked = params["blocks"]
  return {**params, "blocks": {i: jax.tree.map(lambda x: take(x, i), stacked) for i in range(num_layers)}}
