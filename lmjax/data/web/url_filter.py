"""Step 1, URL filter: drop documents whose domain or URL is blocklisted or whose URL has banned words.

FineWeb uses the UT1 blocklist plus banned words/sub-words; we ship a small list in
lmjax/assets/web/url_blocklist/ and load larger ones (one entry per line) from the files named in
config.url_filter.extra_*_files. Domains, URLs and words are set lookups: a million domains cost each
filter task ~1.5 s to load and ~140 MB; sub-words are scanned one by one, so keep that list short.
"""
from __future__ import annotations

import pathlib
import re
import unicodedata
from typing import Callable, Iterable
from urllib.parse import urlsplit

from lmjax.data.documents import read_lines
from lmjax.data.web.document import Document, Drop

SHIPPED_LISTS = pathlib.Path(__file__).parents[2] / "assets" / "web" / "url_blocklist"
URL_WORD_SEPARATOR = re.compile(r"[^a-z0-9]+")


def read_list(path: str | pathlib.Path) -> set[str]:
  """One lowercase entry per line; blank lines and lines starting with '#' are skipped."""
  lines = (line for _, line in read_lines(str(path)))
  return {line.strip().lower() for line in lines if line.strip() and not line.lstrip().startswith("#")}


def _ascii_lower(text: str) -> str:
  return unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()


def _domain_and_parents(host: str) -> Iterable[str]:
  """www.a.example.com -> www.a.example.com, a.example.com, example.com (no public-suffix list needed)."""
  parts = host.split(".")
  return (".".join(parts[i:]) for i in range(len(parts) - 1))


def url_filter(doc: Document, *, blocked_domains: frozenset[str], blocked_urls: frozenset[str],
               banned_words: frozenset[str], soft_banned_words: frozenset[str], soft_word_threshold: int,
               banned_subwords: tuple[str, ...]) -> Document | Drop:
  """Documents without a URL pass (nothing to judge)."""
  if not doc.url:
    return doc
  url = doc.url.strip().lower()
  host = (urlsplit(url if "//" in url else "//" + url).hostname or "").rstrip(".")
  if any(domain in blocked_domains for domain in _domain_and_parents(host)):
    return Drop("blocklisted_domain")
  if url in blocked_urls or url.split("://", 1)[-1] in blocked_urls:
    return Drop("blocklisted_url")
  normalized = _ascii_lower(url)
  url_words = set(URL_WORD_SEPARATOR.split(normalized))
  if url_words & banned_words:
    return Drop("banned_word")
  if len(url_words & soft_banned_words) >= soft_word_threshold:
    return Drop("soft_banned_words")
  squeezed = URL_WORD_SEPARATOR.sub("", normalized)
  if any(subword in squeezed for subword in banned_subwords):
    return Drop("banned_subword")
  return doc


def build(cfg) -> Callable[[Document], Document | Drop]:
  """Load the shipped lists (if `use_shipped_lists`) plus every file named in the config."""
  def load(kind: str, extra_files) -> frozenset[str]:
    entries = read_list(SHIPPED_LISTS / f"{kind}.txt") if cfg.use_shipped_lists else set()
    for path in extra_files:
      entries |= read_list(path)
    return frozenset(entries)

  blocked_domains = load("domains", cfg.extra_domain_files)
  blocked_urls = load("urls", cfg.extra_url_files)
  banned_words = load("banned_words", cfg.extra_banned_word_files)
  soft_banned_words = load("soft_banned_words", cfg.extra_soft_banned_word_files)
  banned_subwords = tuple(sorted(load("banned_subwords", cfg.extra_banned_subword_files)))

  def step(doc: Document) -> Document | Drop:
    return url_filter(doc, blocked_domains=blocked_domains, blocked_urls=blocked_urls, banned_words=banned_words,
                      soft_banned_words=soft_banned_words, soft_word_threshold=cfg.soft_word_threshold,
                      banned_subwords=banned_subwords)
  return step
