"""Units the quality filters count besides words (lines, paragraphs, sentences, n-grams); dedup normalisation.

Words come from lmjax/data/web/words.py (spaCy's English tokenizer, as FineWeb's filters count them).
"""
from __future__ import annotations

import re
import unicodedata

PARAGRAPH_BREAK = re.compile(r"\n{2,}")
LINE_BREAKS = re.compile(r"\n+")
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
# Characters that end a sentence in the common scripts (datatrove's TERMINAL_PUNCTUATION, abridged; no quotes).
TERMINAL_PUNCTUATION = (".", "!", "?", "。", "！", "？", "…", "؟", "۔", "।", "॥", "‼", "⁇", "⁈", "⁉", "‽",
                        "׃", "܀", "፡", "።", "᙮", "᠃", "᠉", "︒", "﹒", "﹖", "﹗", "．", "｡")
# Not words for the Gopher filter: datatrove's PUNCTUATION (with its full-width "1" and control characters)
# plus the terminal punctuation above, i.e. its PUNCTUATION_SET, abridged like TERMINAL_PUNCTUATION.
CONTROLS = "".join(map(chr, [*range(0, 9), *range(11, 32), *range(127, 160)]))
DATATROVE_PUNCTUATION = "!/—”:％１〈&(、━\\【#%「」，】；+^]~“《„';’{|∶´[=-`*．（–？！：$～«〉,><》)?）。…@_.\"}►»"
SYMBOLS = frozenset(DATATROVE_PUNCTUATION + CONTROLS + "".join(TERMINAL_PUNCTUATION))


def split_into_sentences(text: str) -> list[str]:
  return [sentence for sentence in SENTENCE_END.split(text.strip()) if sentence]


def is_punctuation(token: str) -> bool:
  """True for tokens the Gopher quality filter does not count as words (no character outside SYMBOLS)."""
  return all(char in SYMBOLS for char in token)


def n_grams(words: list[str], n: int) -> list[str]:
  return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


def normalize_for_dedup(text: str) -> str:
  """Lowercase, strip accents and punctuation, squeeze whitespace: near-duplicates hash alike."""
  text = unicodedata.normalize("NFD", text.lower())
  text = "".join(char for char in text if not unicodedata.combining(char))
  text = "".join(" " if unicodedata.category(char)[0] in "PSZC" else char for char in text)
  return " ".join(text.split())
