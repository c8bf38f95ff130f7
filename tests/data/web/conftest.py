"""Fixtures for the web-cleaning tests: the shipped WARC, the clean config, and documents made by hand."""
import pathlib

import pytest

import configs.clean
from lmjax.data.web.document import Document

HERE = pathlib.Path(__file__).parent
REPO = HERE.parents[2]
SHIPPED_WARC = REPO / "lmjax" / "assets" / "web" / "python-docs.warc.gz"


@pytest.fixture
def clean_config():
  return configs.clean.get_config()


@pytest.fixture
def shipped_warc() -> pathlib.Path:
  return SHIPPED_WARC


def make_doc(text: str, url: str = "", doc_id: str = "doc") -> Document:
  return Document(id=doc_id, text=text, url=url)


def read_fortunes(language: str) -> list[str]:
  """The shipped excerpt of Debian's fortunes-<language> (GPL-2+, see SOURCES.md)."""
  return [item.strip() for item in (HERE / "fortunes" / f"{language}.txt").read_text().split("\n%\n") if item.strip()]
