"""Split text into the units the quality filters count: words, lines, paragraphs, sentences, n-grams.

The word splitter imitates the spaCy English tokenizer FineWeb's filters use (split off leading and
trailing punctuation, hyphen/'='/camel-dot infixes and contractions) at ~10x its speed; on 6,067
real documents the Gopher filters then agree with datatrove's on 98.2% (quality) / 99.8% (repetition).
"""
from __future__ import annotations

import re
import string
import unicodedata

PARAGRAPH_BREAK = re.compile(r"\n{2,}")
LINE_BREAKS = re.compile(r"\n+")
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")
PUNCTUATION = frozenset(string.punctuation + "«»“”‘’„…–—¡¿·•")
# Characters that end a sentence in the common scripts (datatrove's TERMINAL_PUNCTUATION, abridged; no quotes).
TERMINAL_PUNCTUATION = (".", "!", "?", "。", "！", "？", "…", "؟", "۔", "।", "॥", "‼", "⁇", "⁈", "⁉", "‽",
                        "׃", "܀", "፡", "።", "᙮", "᠃", "᠉", "︒", "﹒", "﹖", "﹗", "．", "｡")
WORD_PREFIX = re.compile(r"""^(?:\.\.\.|[(\[{<"'“‘«*§$£€#`_%&—–])""")
WORD_SUFFIX = re.compile(r"""(?:\.\.\.|…|\):|[)\]}>"'”’»,;:!?%*`_(]|(?<!^[A-Za-z])\.)$""")  # "o." stays whole
WORD_INFIX = re.compile(r"""(?<=\w)--(?=\w)|=(?=[A-Za-z])|(?<=[A-Za-z0-9])[-—–](?=[A-Za-z0-9])"""
                        r"""|(?<=[a-z])\.(?=[A-Z])"""
                        r"""|(?<=[A-Za-z0-9])[:<>/](?=[A-Za-z])""")
CONTRACTION = re.compile(r"""(?i)^(.+?)(n['’]t|['’](?:s|re|ll|ve|d|m))$""")
SPECIAL_CASES = {"cannot": ["can", "not"], "Cannot": ["Can", "not"], "e.g.": ["e.g."], "i.e.": ["i.e."],
                 "vs.": ["vs."], "Mr.": ["Mr."], "Mrs.": ["Mrs."], "Dr.": ["Dr."], "a.m.": ["a.m."], "p.m.": ["p.m."]}


def split_into_words(text: str) -> list[str]:
  """Words and punctuation tokens, as spaCy's English tokenizer splits them (close enough for ratios)."""
  tokens: list[str] = []
  for chunk in text.split():
    if chunk in SPECIAL_CASES:
      tokens += SPECIAL_CASES[chunk]
      continue
    if chunk.isalnum():  # most chunks: nothing to split
      tokens.append(chunk)
      continue
    prefixes, suffixes = [], []
    while (match := WORD_PREFIX.match(chunk)) and len(chunk) > match.end():
      prefixes.append(match.group())
      chunk = chunk[match.end():]
    while chunk not in SPECIAL_CASES and (match := WORD_SUFFIX.search(chunk)) and match.start() > 0:
      suffixes.append(match.group())
      chunk = chunk[:match.start()]
    tokens += prefixes
    contraction = CONTRACTION.match(chunk)
    for piece in SPECIAL_CASES.get(chunk) or (contraction.groups() if contraction else (chunk,)):
      position = 0
      for infix in WORD_INFIX.finditer(piece):
        tokens += [piece[position:infix.start()], infix.group()] if infix.start() > position else [infix.group()]
        position = infix.end()
      if position < len(piece):
        tokens.append(piece[position:])
    tokens += suffixes[::-1]
  return tokens


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
