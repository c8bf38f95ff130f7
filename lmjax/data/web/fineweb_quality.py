"""Step 7, FineWeb's own quality filter (Penedo et al. 2024, datatrove's FineWebQualityFilter).

Drops documents where few lines end in punctuation, most lines are short, duplicated lines hold
more than `char_duplicates_ratio` of the characters, or there are too many newlines per word (lists).
"""
from __future__ import annotations

import functools

from lmjax.data.web.document import Document, Drop
from lmjax.data.web.gopher_repetition import count_duplicates
from lmjax.data.web.text_units import TERMINAL_PUNCTUATION
from lmjax.data.web.words import split_into_words


def fineweb_quality(doc: Document, *, line_punct_thr: float, line_punct_exclude_zero: bool, short_line_thr: float,
                    short_line_length: int, char_duplicates_ratio: float, new_line_ratio: float) -> Document | Drop:
  lines = [line for line in doc.text.split("\n") if line.strip()]
  if not lines:
    return Drop("empty")
  punctuated = sum(line.endswith(TERMINAL_PUNCTUATION) for line in lines) / len(lines)
  if punctuated < line_punct_thr and not (punctuated == 0 and line_punct_exclude_zero):
    return Drop("line_punct_ratio")
  short = sum(len(line) <= short_line_length for line in lines) / len(lines)
  if short > short_line_thr:
    return Drop("short_line_ratio")
  duplicated_chars = count_duplicates(lines)[1]
  if duplicated_chars / max(1, len(doc.text.replace("\n", ""))) > char_duplicates_ratio:
    return Drop("char_dup_ratio")
  words = split_into_words(doc.text)
  if doc.text.count("\n") / max(1, len(words)) > new_line_ratio:
    return Drop("list_ratio")
  return doc


def build(cfg):
  settings = {key: value for key, value in cfg.items() if key != "enabled"}
  return functools.partial(fineweb_quality, **settings)
