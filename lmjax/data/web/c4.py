"""Step 6, C4 filters (Raffel et al. 2020, as in datatrove's C4QualityFilter), with FineWeb's switches.

Line-level: drop lines with a word over `max_word_length`, without terminal punctuation (off in
FineWeb), with fewer than `min_words_per_line` words, mentioning javascript, or cookie/policy boilerplate;
strip Wikipedia-style citations. Document-level: drop on "lorem ipsum", on a curly brace, or when
fewer than `min_num_sentences` sentences remain. Kept documents are rewritten to the kept lines.
"""
from __future__ import annotations

import functools
import re

from lmjax.data.web.document import Document, Drop
from lmjax.data.web.text_units import split_into_sentences

END_PUNCTUATION = (".", "?", "!", '"', "'")
ELLIPSIS = "..."
CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                     "use cookies")


def c4_filter(doc: Document, *, filter_no_terminal_punct: bool, min_words_per_line: int, max_word_length: int,
              remove_citations: bool, filter_lorem_ipsum: bool, filter_javascript: bool,
              filter_curly_bracket: bool, filter_policy: bool, min_num_sentences: int) -> Document | Drop:
  kept_lines = []
  num_sentences = 0
  for line in doc.text.splitlines():
    line = line.strip()
    words = line.split()
    if max_word_length > 0 and any(len(word) > max_word_length for word in words):
      continue
    if remove_citations:
      line = CITATION.sub("", line)
    if filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith(ELLIPSIS)):
      continue
    if len(words) < min_words_per_line:
      continue
    lowered = line.lower()
    if filter_lorem_ipsum and "lorem ipsum" in lowered:
      return Drop("lorem_ipsum")
    if filter_javascript and "javascript" in lowered:
      continue
    if filter_curly_bracket and "{" in line:
      return Drop("curly_bracket")
    if filter_policy and any(policy in lowered for policy in POLICY_SUBSTRINGS):
      continue
    num_sentences += len(split_into_sentences(line))
    kept_lines.append(line)
  if num_sentences < min_num_sentences:
    return Drop("too_few_sentences")
  return doc.with_text("\n".join(kept_lines).strip())


def build(cfg):
  settings = {key: value for key, value in cfg.items() if key != "enabled"}
  return functools.partial(c4_filter, **settings)
