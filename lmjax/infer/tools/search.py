"""The search tool: BM25 over overlapping ~100-word passages of a local document collection.

    index = SearchIndex.build("lmjax/assets/corpus/*.jsonl.gz")   # or a list of {"text", "id"?, ...} dicts
    index.search("who built the ark", k=3)  # [(score, passage, source id), ...], best first
    make_search_tool(index)("who built the ark")  # the same, as text for the model

Documents are JSON lines with a "text" and optionally "id", "url", "title" (the shipped corpus, the web
cleaner's output, any JSONL). Terms are lowercase word tokens (`\\w+`), no stemming or stop words; BM25 with
k1=1.5, b=0.75 and the non-negative idf log(1 + (N - df + 0.5) / (df + 0.5)). Ties in score go to the
earlier passage, so results are deterministic.
"""
import collections
import dataclasses
import os
import re
from collections.abc import Callable, Iterable

import numpy as np

from lmjax.data import documents

PASSAGE_WORDS = 100
OVERLAP_WORDS = 20
K1, B = 1.5, 0.75
MAX_QUERY_CHARS = 500
_WORD = re.compile(r"\w+")
_SPACE_SEPARATED = re.compile(r"\S+")


def terms(text: str) -> list[str]:
  """The BM25 terms of a text: its lowercase word tokens."""
  return _WORD.findall(text.lower())


def passages(text: str, words: int = PASSAGE_WORDS, overlap: int = OVERLAP_WORDS) -> list[str]:
  """Windows of `words` whitespace-separated words, each sharing `overlap` words with the one before.

  Each passage is a slice of the original text, so line breaks and spacing survive.
  """
  starts = [m.start() for m in _SPACE_SEPARATED.finditer(text)]
  if not starts:
    return []
  out, stride = [], words - overlap
  for first in range(0, max(len(starts) - overlap, 1), stride):
    end = starts[first + words] if first + words < len(starts) else len(text)
    out.append(text[starts[first]:end].rstrip())
  return out


def _read_records(pattern: str) -> Iterable[tuple[str, dict]]:
  """(file:line, record) of each JSON line; a glob matching nothing or a bad line is an error naming it."""
  paths = documents.matching_files(pattern)
  if not paths:
    raise FileNotFoundError(f"no files match the search documents {pattern!r} (lmjax chat --search): give a "
                            "glob of JSONL files, quoted so the shell does not expand it")
  yield from documents.read_jsonl(paths, _record, "a JSON object")


def _record(record, where: str) -> tuple[str, dict]:
  if not isinstance(record, dict):
    raise TypeError(f"a {type(record).__name__}")
  return os.path.basename(where), record


def _records(paths_or_docs) -> Iterable[tuple[str, dict]]:
  """(fallback source id, record) of every document."""
  if isinstance(paths_or_docs, (str, os.PathLike)):
    yield from _read_records(os.fspath(paths_or_docs))
    return
  for k, item in enumerate(paths_or_docs):
    if isinstance(item, (str, os.PathLike)):
      yield from _read_records(os.fspath(item))
    else:
      yield f"doc{k}", item


@dataclasses.dataclass(frozen=True, eq=False)  # compared by identity: it holds arrays
class SearchIndex:
  """Passages with their sources, and per term the passages it occurs in with counts (the postings)."""
  passages: list[str]
  sources: list[str]  # per passage: the document's id (or url, or file:line)
  titles: list[str]  # per passage: the document's title, or ""
  postings: dict[str, tuple[np.ndarray, np.ndarray]]  # term -> (passage indices, term counts), ascending
  lengths: np.ndarray  # per passage: number of terms

  @classmethod
  def build(cls, paths_or_docs) -> "SearchIndex":
    """Indexes a glob (or comma-separated globs) of JSONL files, a list of paths, or a list of dicts."""
    texts, sources, titles, lengths = [], [], [], []
    occurrences = collections.defaultdict(list)  # term -> [passage index, count, passage index, count, ...]
    for fallback_id, record in _records(paths_or_docs):
      source = str(record.get("id") or record.get("url") or fallback_id)
      text = record.get("text")
      if not isinstance(text, str):
        raise documents.BadRecord(f"document {source} has no 'text' string; the search index needs one")
      for passage in passages(text):
        counts = collections.Counter(terms(passage))
        if not counts:
          continue
        index = len(texts)
        for term, count in counts.items():
          occurrences[term] += (index, count)
        texts.append(passage)
        sources.append(source)
        titles.append(str(record.get("title") or ""))
        lengths.append(sum(counts.values()))
    postings = {}
    for term, flat in occurrences.items():
      pairs = np.array(flat, dtype=np.int32).reshape(-1, 2)
      postings[term] = (pairs[:, 0], pairs[:, 1])
    return cls(texts, sources, titles, postings, np.array(lengths, dtype=np.int32))

  def search(self, query: str, k: int = 3) -> list[tuple[float, str, str]]:
    """The top k (score, passage, source id) by BM25, best first; ties go to the earlier passage."""
    return [(score, self.passages[i], self.sources[i]) for score, i in self.top(query, k)]

  def top(self, query: str, k: int = 3) -> list[tuple[float, int]]:
    """The top k (score, passage index) by BM25; passages sharing no term with the query never appear."""
    n = len(self.passages)
    if not n:
      return []
    scores = np.zeros(n, dtype=np.float64)
    length_norm = K1 * (1 - B + B * self.lengths / self.lengths.mean())
    for term in dict.fromkeys(terms(query)):  # each distinct term once, in query order
      if term not in self.postings:
        continue
      where, counts = self.postings[term]
      idf = np.log(1 + (n - len(where) + 0.5) / (len(where) + 0.5))
      scores[where] += idf * counts * (K1 + 1) / (counts + length_norm[where])
    hits = np.flatnonzero(scores > 0)
    top = hits[np.lexsort((hits, -scores[hits]))[:k]]
    return [(float(scores[i]), int(i)) for i in top]

  def stats(self) -> dict:
    """Sizes, for logs and reports."""
    postings = sum(len(w) for w, _ in self.postings.values())
    return {"passages": len(self.passages), "terms": len(self.postings), "postings": postings,
            "text_mb": round(sum(map(len, self.passages)) / 1e6, 1),
            "postings_mb": round(postings * 8 / 1e6, 1)}


def make_search_tool(index: SearchIndex, k: int = 3, max_chars: int = 800) -> Callable[[str], str]:
  """The tool: a query in, the top k passages as numbered text out ("no passages match ..." if none)."""

  def search(query: str) -> str:
    query = query.strip()
    if not query:
      return "error: empty search query; write the words to look for"
    if len(query) > MAX_QUERY_CHARS:
      return f"error: search query too long: {len(query):,} characters (the limit is {MAX_QUERY_CHARS})"
    hits = index.top(query, k)
    if not hits:
      return f"no passages match {query!r}"
    blocks = []
    for rank, (_, i) in enumerate(hits, 1):
      passage, title = index.passages[i], index.titles[i]
      text = passage if len(passage) <= max_chars else passage[:max_chars] + " …"
      blocks.append(f"[{rank}] {title + ' — ' if title else ''}{index.sources[i]}\n{text}")
    return "\n\n".join(blocks)

  return search
