"""Step 5, Gopher repetition filter (Rae et al. 2021 table A1, as in datatrove's GopherRepetitionFilter).

Drops documents whose duplicated paragraphs/lines (by count or by characters), most frequent
2-4-gram, or duplicated 5-10-grams cover more than the configured fraction of the text.
"""
from __future__ import annotations

import collections
import functools

from lmjax.data.web.document import Document, Drop
from lmjax.data.web.text_units import LINE_BREAKS, PARAGRAPH_BREAK, n_grams
from lmjax.data.web.words import split_into_words


def count_duplicates(items: list[str]) -> tuple[int, int]:
  """(number of items seen before, characters in them): the second copy onwards counts."""
  seen: set[str] = set()
  duplicate_items = duplicate_chars = 0
  for item in items:
    if item in seen:
      duplicate_items += 1
      duplicate_chars += len(item)
    else:
      seen.add(item)
  return duplicate_items, duplicate_chars


def top_n_gram_chars(words: list[str], n: int) -> int:
  """Characters covered by the most frequent n-gram: its length times its count."""
  counts = collections.Counter(n_grams(words, n))
  if not counts:
    return 0
  gram, count = counts.most_common(1)[0]
  return len(gram) * count


def duplicate_n_gram_chars(words: list[str], n: int) -> int:
  """Characters in n-grams seen before, skipping past each repeat so overlaps count once."""
  seen: set[str] = set()
  repeated_chars = index = 0
  while index < len(words) - n + 1:
    gram = "".join(words[index:index + n])
    if gram in seen:
      repeated_chars += len(gram)
      index += n
    else:
      seen.add(gram)
      index += 1
  return repeated_chars


def gopher_repetition(doc: Document, *, dup_para_frac: float, dup_para_char_frac: float, dup_line_frac: float,
                      dup_line_char_frac: float, top_n_grams: tuple[tuple[int, float], ...],
                      dup_n_grams: tuple[tuple[int, float], ...]) -> Document | Drop:
  text = doc.text
  if not text.strip():
    return Drop("empty")
  paragraphs = PARAGRAPH_BREAK.split(text.strip())
  duplicates, chars = count_duplicates(paragraphs)
  if duplicates / len(paragraphs) > dup_para_frac:
    return Drop("dup_para_frac")
  if chars / len(text) > dup_para_char_frac:
    return Drop("dup_para_char_frac")
  lines = LINE_BREAKS.split(text)
  duplicates, chars = count_duplicates(lines)
  if duplicates / len(lines) > dup_line_frac:
    return Drop("dup_line_frac")
  if chars / len(text) > dup_line_char_frac:
    return Drop("dup_line_char_frac")
  words = split_into_words(text)
  for n, max_fraction in top_n_grams:
    if top_n_gram_chars(words, n) / len(text) > max_fraction:
      return Drop(f"top_{n}_gram")
  for n, max_fraction in dup_n_grams:
    if duplicate_n_gram_chars(words, n) / len(text) > max_fraction:
      return Drop(f"duplicated_{n}_n_grams")
  return doc


def build(cfg):
  return functools.partial(
      gopher_repetition, dup_para_frac=cfg.dup_para_frac, dup_para_char_frac=cfg.dup_para_char_frac,
      dup_line_frac=cfg.dup_line_frac, dup_line_char_frac=cfg.dup_line_char_frac,
      top_n_grams=tuple((int(n), float(f)) for n, f in cfg.top_n_grams),
      dup_n_grams=tuple((int(n), float(f)) for n, f in cfg.dup_n_grams))
