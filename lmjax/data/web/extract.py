"""Step 2, text extraction: HTML -> main-content plain text with resiliparse.

Chosen over trafilatura (FineWeb's choice) after measuring both on 496 real python3.11-doc pages
against their reST sources (experiments/benchmarks/clean_throughput.py --extraction-quality):
resiliparse main-content: word precision 0.960, recall 0.877; trafilatura with FineWeb's settings:
0.963, 0.863 — as good, and 14-20x faster (58 vs 4.0 docs/s on a busy 2-core machine, 105 vs 5.1 idle).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

from lmjax.data.web.document import Document, Drop


def extract_text(doc: Document, *, main_content: bool, alt_texts: bool, links: bool) -> Document | Drop:
  """Rewrite HTML documents to text; documents that are already text pass unchanged."""
  if not doc.is_html:
    return doc
  tree = HTMLTree.parse(doc.text)
  text = extract_plain_text(tree, main_content=main_content, alt_texts=alt_texts, links=links,
                            preserve_formatting=True).strip()
  if not text:
    return Drop("no_text_extracted")
  return dataclasses.replace(doc, text=text, is_html=False)


def build(cfg) -> Callable[[Document], Document | Drop]:
  def step(doc: Document) -> Document | Drop:
    return extract_text(doc, main_content=cfg.main_content, alt_texts=cfg.alt_texts, links=cfg.links)
  return step
