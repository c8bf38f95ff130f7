"""A seeded, weighted mix of conversations from several sources: the SFT dataset the config describes.

    mix({"chatterbot": chats, "math": maths, "identity": ids}, {"chatterbot": 1, "math": 2, "identity": 0.1},
        n=10_000, seed=0)

Each output conversation comes from source s with probability weights[s] / sum(weights); within a source,
conversations are drawn as shuffled passes (every one once before any repeats), so a small source is
repeated evenly rather than at random.
"""
import random

from lmjax import chat


def _check(sources: dict, weights: dict) -> None:
  unknown = sorted(set(weights) - set(sources))
  if unknown:
    raise ValueError(f"weights name sources {unknown} that were not given; the sources are {sorted(sources)}")
  for name, weight in weights.items():
    if not isinstance(weight, (int, float)) or weight < 0:
      raise ValueError(f"weight of source {name!r} is {weight!r}; weights are numbers >= 0")
    if weight > 0 and not sources[name]:
      raise ValueError(f"source {name!r} has weight {weight} but no conversations; give it data or weight 0")
  if not any(w > 0 for w in weights.values()):
    raise ValueError(f"all weights are zero ({weights}); give at least one source a positive weight")


def _passes(items: list, rng: random.Random):
  """Endless shuffled passes over `items`."""
  while True:
    order = list(range(len(items)))
    rng.shuffle(order)
    for i in order:
      yield items[i]


def mix(sources: dict[str, list], weights: dict[str, float], n: int, seed: int = 0,
        with_source: bool = False) -> list:
  """`n` conversations drawn by weight (sources missing from `weights` get none), each `chat.validate`d.

  Deterministic for (sources, weights, n, seed), independent of dict order. With `with_source`, returns
  (source name, conversation) pairs. A conversation that breaks the protocol raises ProtocolError naming its
  source and index in it.
  """
  _check(sources, weights)
  names = sorted(name for name, w in weights.items() if w > 0)
  rng = random.Random(seed)
  streams = {name: _passes(list(enumerate(sources[name])), random.Random(f"{seed}/{name}")) for name in names}
  picks = rng.choices(names, weights=[weights[name] for name in names], k=n)
  out = []
  for name in picks:
    index, conversation = next(streams[name])
    try:
      chat.validate(conversation)
    except chat.ProtocolError as e:
      raise chat.ProtocolError(f"source {name!r} conversation {index}: {e}") from None
    out.append((name, conversation) if with_source else conversation)
  return out
