"""Split text into the units the quality filters count: words, lines, paragraphs, sentences, n-grams.

One regex tokenizer for every language the filters see (FineWeb uses NLTK/spaCy for English; the
counts differ only on contractions and rare punctuation, see experiments/benchmarks/clean_throughput.py).
"""
from __future__ import annotations

import re
import string
import unicodedata

WORD_OR_PUNCTUATION = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]+")
PARAGRAPH_BREAK = re.compile(r"\n{2,}")
LINE_BREAKS = re.compile(r"\n+")
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
PUNCTUATION = frozenset(string.punctuation + "«»“”‘’„…–—¡¿·•")
# Unicode characters that end a sentence or a line in the common scripts (FineWeb's TERMINAL_PUNCTUATION, abridged).
TERMINAL_PUNCTUATION = (".", "!", "?", "。", "！", "？", "…", "؟", "۔", "।", "॥", "‼", "⁇", "⁈", "⁉", "‽", "׃",
                        "܀", "፡", "።", "᙮", "᠃", "᠉", "︒", "﹒", "﹖", "﹗", "．", "｡", '"', "'")


def split_into_words(text: str) -> list[str]:
  """Words, with each run of punctuation as its own token (like the NLTK tokenizers FineWeb uses)."""
  return WORD_OR_PUNCTUATION.findall(text)


def split_into_sentences(text: str) -> list[str]:
  return [sentence for sentence in SENTENCE_END.split(text.strip()) if sentence]


def is_punctuation(token: str) -> bool:
  return all(char in PUNCTUATION for char in token)


def n_grams(words: list[str], n: int) -> list[str]:
  return [" ".join(words[i:i + n]) for i in range(len(words) - n + 1)]


def normalize_for_dedup(text: str) -> str:
  """Lowercase, strip accents and punctuation, squeeze whitespace: near-duplicates hash alike."""
  text = unicodedata.normalize("NFD", text.lower())
  text = "".join(char for char in text if not unicodedata.combining(char))
  text = "".join(" " if unicodedata.category(char)[0] in "PSZC" else char for char in text)
  return " ".join(text.split())
