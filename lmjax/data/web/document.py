"""The document that flows through the cleaning steps, and the verdict a step returns.

A step is a pure function `step(doc) -> Document | Drop`: return the document (the same one to
keep it, or `doc.with_text(new_text)` to rewrite it) or `Drop(reason)` to remove it.
"""
from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Document:
  """One web document: `text` is raw HTML before extraction and plain text after it."""

  id: str  # stable id: the WARC-Record-ID, or "<file>:<line>" for files without one
  text: str
  url: str = ""
  source: str = ""  # where it came from: "<input file>" (+ "#<record id>" for WARC records)
  is_html: bool = False  # True until the extraction step turns the HTML into text; not written out
  metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

  def with_text(self, text: str) -> Document:
    return dataclasses.replace(self, text=text)

  def with_metadata(self, **fields: Any) -> Document:
    return dataclasses.replace(self, metadata={**self.metadata, **fields})

  def to_json(self) -> dict[str, Any]:
    """The output row: id, url, text, source, plus metadata (language, language_score, ...)."""
    return {"id": self.id, "url": self.url, "text": self.text, "source": self.source, **self.metadata}

  @classmethod
  def from_json(cls, row: dict[str, Any]) -> Document:
    row = dict(row)
    return cls(id=row.pop("id"), text=row.pop("text"), url=row.pop("url", ""),
               source=row.pop("source", ""), metadata=row)


@dataclasses.dataclass(frozen=True)
class Drop:
  """A step's decision to remove a document; `reason` is counted in stats.json (e.g. "gopher_short_doc")."""

  reason: str
