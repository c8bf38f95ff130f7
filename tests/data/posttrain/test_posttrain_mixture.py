"""The weighted, seeded mixture of conversation sources."""
import collections

import pytest

from lmjax import chat
from lmjax.data.posttrain import mixture


def _source(name, n):
  return [[{"role": "user", "content": f"{name} {i}"}, {"role": "assistant", "content": "ok"}] for i in range(n)]


SOURCES = {"a": _source("a", 50), "b": _source("b", 7), "c": _source("c", 300), "d": _source("d", 5)}


def test_mixture_respects_weights():
  weights = {"a": 1.0, "b": 2.0, "c": 5.0, "d": 0.0}
  drawn = mixture.mix(SOURCES, weights, n=8000, seed=0, with_source=True)
  counts = collections.Counter(name for name, _ in drawn)
  assert counts["d"] == 0 and len(drawn) == 8000
  for name in ("a", "b", "c"):
    assert counts[name] / 8000 == pytest.approx(weights[name] / 8, abs=0.02), (name, counts)
  assert all(conversation[0]["content"].startswith(name) for name, conversation in drawn)


def test_small_sources_repeat_evenly():
  drawn = mixture.mix(SOURCES, {"b": 1}, n=70, seed=0)
  assert set(collections.Counter(c[0]["content"] for c in drawn).values()) == {10}


def test_mixture_is_deterministic_and_seeded():
  weights = {"a": 1, "b": 1, "c": 1}
  reordered = dict(reversed(list(SOURCES.items())))
  assert mixture.mix(SOURCES, weights, 100, seed=1) == mixture.mix(reordered, dict(reversed(weights.items())), 100, 1)
  assert mixture.mix(SOURCES, weights, 100, seed=1) != mixture.mix(SOURCES, weights, 100, seed=2)


def test_invalid_conversation_names_its_source():
  sources = {"good": _source("g", 3), "bad": [[{"role": "assistant", "content": "hi"}]]}
  with pytest.raises(chat.ProtocolError, match="source 'bad' conversation 0: message 0"):
    mixture.mix(sources, {"good": 1, "bad": 1}, n=50, seed=0)


@pytest.mark.parametrize("weights, message", [
    ({"a": 1, "zzz": 1}, "not given"), ({"a": -1}, "weights are numbers >= 0"), ({"a": 0}, "all weights are zero"),
])
def test_bad_weights_are_errors(weights, message):
  with pytest.raises(ValueError, match=message):
    mixture.mix(SOURCES, weights, n=10, seed=0)


def test_empty_source_with_weight_is_an_error():
  with pytest.raises(ValueError, match="source 'e' has weight 1 but no conversations"):
    mixture.mix({"e": []}, {"e": 1}, n=10, seed=0)
