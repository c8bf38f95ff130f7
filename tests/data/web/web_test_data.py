"""Paths and helpers shared by the web-cleaning tests (not in conftest.py: that module name clashes across folders)."""
import pathlib

from lmjax.data.web.document import Document

HERE = pathlib.Path(__file__).parent
REPO = HERE.parents[2]
SHIPPED_WARC = REPO / "lmjax" / "assets" / "web" / "python-docs.warc.gz"


def make_doc(text: str, url: str = "", doc_id: str = "doc") -> Document:
  return Document(id=doc_id, text=text, url=url)


def read_fortunes(language: str) -> list[str]:
  """The shipped excerpt of Debian's fortunes-<language> (see SOURCES.md)."""
  return [item.strip() for item in (HERE / "fortunes" / f"{language}.txt").read_text().split("\n%\n") if item.strip()]
