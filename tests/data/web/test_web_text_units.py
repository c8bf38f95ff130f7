"""Sentences and the normalisation MinHash shingles."""
from lmjax.data.web.text_units import normalize_for_dedup, split_into_sentences


def test_sentences_and_dedup_normalisation():
  assert split_into_sentences("One. Two! Three? four") == ["One.", "Two!", "Three?", "four"]
  assert normalize_for_dedup("Café, CAFÉ —   café!") == "cafe cafe cafe"
