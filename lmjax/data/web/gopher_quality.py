"""Step 4, Gopher quality filter (Rae et al. 2021, as in FineWeb/datatrove's GopherQualityFilter).

Drops documents with too few/many words, odd mean word length, many '#' or ellipses, mostly
bullet or ellipsis-ended lines, few alphabetic words, or fewer than `min_stop_words` of the distinct stop
words ("contains at least two of the following English words", counted case-sensitively as datatrove does).
Words are spaCy's English tokens (lmjax/data/web/words.py), so every ratio is datatrove's.
"""
from __future__ import annotations

import functools

from lmjax.data.web.document import Document, Drop
from lmjax.data.web.text_units import is_punctuation
from lmjax.data.web.words import split_into_words


def gopher_quality(doc: Document, *, min_doc_words: int, max_doc_words: int, min_avg_word_length: float,
                   max_avg_word_length: float, max_symbol_word_ratio: float, max_bullet_lines_ratio: float,
                   max_ellipsis_lines_ratio: float, max_non_alpha_words_ratio: float, min_stop_words: int,
                   stop_words: tuple[str, ...]) -> Document | Drop:
  """Thresholds are inclusive bounds: a document exactly at a threshold is kept."""
  text = doc.text
  words = split_into_words(text)
  if not words:
    return Drop("gopher_short_doc")
  real_words = [word for word in words if not is_punctuation(word)]
  if len(real_words) < min_doc_words:
    return Drop("gopher_short_doc")
  if len(real_words) > max_doc_words:
    return Drop("gopher_long_doc")
  mean_word_length = sum(len(word) for word in real_words) / max(1, len(real_words))
  if mean_word_length < min_avg_word_length:
    return Drop("gopher_below_avg_word_length")
  if mean_word_length > max_avg_word_length:
    return Drop("gopher_above_avg_word_length")
  if text.count("#") / len(words) > max_symbol_word_ratio:
    return Drop("gopher_too_many_hashes")
  if (text.count("...") + text.count("…")) / len(words) > max_symbol_word_ratio:
    return Drop("gopher_too_many_ellipsis")
  lines = text.splitlines() or [""]
  bullet_lines = sum(line.lstrip().startswith(("•", "-")) for line in lines)
  if bullet_lines / len(lines) > max_bullet_lines_ratio:
    return Drop("gopher_too_many_bullets")
  ellipsis_lines = sum(line.rstrip().endswith(("...", "…")) for line in lines)
  if ellipsis_lines / len(lines) > max_ellipsis_lines_ratio:
    return Drop("gopher_too_many_end_ellipsis")
  alpha_words = sum(any(char.isalpha() for char in word) for word in words)
  if alpha_words / len(words) < max_non_alpha_words_ratio:
    return Drop("gopher_below_alpha_threshold")
  if len(frozenset(stop_words).intersection(words)) < min_stop_words:  # distinct, as written (as FineWeb)
    return Drop("gopher_enough_stop_words")
  return doc


def build(cfg):
  settings = {key: value for key, value in cfg.items() if key != "enabled"}
  settings["stop_words"] = tuple(settings["stop_words"])
  return functools.partial(gopher_quality, **settings)
