"""Stream documents out of raw input files: WARC(.gz), HTML, JSONL(.gz/.zst) and parquet.

Readers never raise on bad input: a truncated file, a non-HTML WARC record, a corrupt gzip/deflate/
chunked HTTP body, undecodable bytes or a line that is not JSON is counted in `InputProblems` (with one
example message per kind) and skipped.

Document ids and sources name the input file, never its path (`pages.warc.gz#<record id>`, `a.jsonl:3`), so
the cleaned corpus and every split decided by an id are the same wherever the input lives. Problem messages
keep the full path: they tell a person which file to fix.
"""
from __future__ import annotations

import collections
import dataclasses
import gzip
import io
import json
import os
import pathlib
from typing import Iterator

import zstandard
from fastwarc.warc import ArchiveIterator, WarcRecordType
from resiliparse.parse.encoding import bytes_to_str, detect_encoding

from lmjax.data.web.document import Document
from lmjax.data.web.http_body import BodyError, decode_body

WARC_SUFFIXES = (".warc", ".warc.gz")
HTML_SUFFIXES = (".html", ".htm")
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz")
PARQUET_SUFFIXES = (".parquet",)


@dataclasses.dataclass
class InputProblems:
  """Counts of unreadable input by kind, with the first message of each kind for the report."""

  counts: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  examples: dict[str, str] = dataclasses.field(default_factory=dict)

  def add(self, kind: str, message: str) -> None:
    self.counts[kind] += 1
    self.examples.setdefault(kind, message)


def decode_html(data: bytes, source: str, problems: InputProblems) -> str:
  """UTF-8 if valid, else the detected encoding; bytes that fit neither are replaced and counted."""
  try:
    return data.decode("utf-8")
  except UnicodeDecodeError:
    pass
  encoding = detect_encoding(data)
  try:
    return data.decode(encoding)
  except (UnicodeDecodeError, LookupError):
    problems.add("undecodable_bytes", f"{source}: bytes not valid {encoding}; replaced with U+FFFD")
    return bytes_to_str(data, encoding)


def read_warc(path: str, problems: InputProblems) -> Iterator[Document]:
  """HTML response records of a WARC(.gz) file, HTTP codings undone; ids are WARC-Record-IDs."""
  with open(path, "rb") as stream:
    try:
      for record in ArchiveIterator(stream, record_types=WarcRecordType.response, parse_http=True,
                                    auto_decode="none"):
        record_id = record.record_id
        where, source = f"{path}#{record_id}", f"{os.path.basename(path)}#{record_id}"
        content_type = (record.http_headers.get("Content-Type") or "").lower()
        body = record.reader.read()
        if len(body) < record.content_length:
          problems.add("truncated_record", f"{where}: {len(body)} of {record.content_length} bytes "
                       "(file cut short? re-download or re-compress it)")
          continue
        if "html" not in content_type:
          problems.add("not_html_record", f"{where}: Content-Type {content_type!r} is not HTML")
          continue
        try:
          body = decode_body(body, record.http_headers.get("Transfer-Encoding"),
                             record.http_headers.get("Content-Encoding"))
        except BodyError as error:
          problems.add("corrupt_http_body", f"{where}: {error}; record skipped")
          continue
        url = (record.headers.get("WARC-Target-URI") or "").strip("<>")
        yield Document(id=record_id, text=decode_html(body, where, problems), url=url, source=source,
                       is_html=True)
    except Exception as error:  # fastwarc raises on corrupt framing; keep what was read
      problems.add("corrupt_warc", f"{path}: {type(error).__name__}: {error}")


def read_html(path: str, problems: InputProblems) -> Iterator[Document]:
  """A single HTML file as one document; its id is the file's name."""
  data, name = pathlib.Path(path).read_bytes(), os.path.basename(path)
  yield Document(id=name, text=decode_html(data, path, problems), url="", source=name, is_html=True)


def _open_text_lines(path: str) -> io.BufferedReader:
  if path.endswith(".gz"):
    return gzip.open(path, "rb")
  if path.endswith(".zst"):  # the raw zstd reader does not iterate by line: buffer it
    return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
  return open(path, "rb")


def read_jsonl(path: str, problems: InputProblems) -> Iterator[Document]:
  """One JSON object per line with `text` and optional `id`, `url`; ids default to "<file name>:<line>"."""
  line_number = 0
  try:
    with _open_text_lines(path) as lines:
      for line_number, raw in enumerate(lines, start=1):
        where = f"{path}:{line_number}"
        if not raw.strip():
          continue
        try:
          row = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
          problems.add("undecodable_bytes", f"{where}: not UTF-8 ({error}); line skipped")
          continue
        except json.JSONDecodeError as error:
          problems.add("bad_json_line", f"{where}: not JSON ({error}); line skipped")
          continue
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
          problems.add("missing_text", f"{where}: no string field 'text'; line skipped")
          continue
        name = f"{os.path.basename(path)}:{line_number}"
        yield Document(id=str(row.get("id", name)), text=row["text"], url=str(row.get("url", "")),
                       source=name)
  except (OSError, EOFError, zstandard.ZstdError) as error:
    problems.add("truncated_file", f"{path}: {type(error).__name__}: {error} after line {line_number}")


def read_parquet(path: str, problems: InputProblems, text_column: str = "text") -> Iterator[Document]:
  """Rows of a parquet file with a text column (pyarrow needed); ids default to "<file name>:<row>"."""
  try:
    import pyarrow.parquet as pq
  except ImportError as error:
    raise ImportError(f"reading {path} needs pyarrow: pip install pyarrow") from error
  try:
    table = pq.ParquetFile(path)
    row_number = 0
    for batch in table.iter_batches():
      rows = batch.to_pylist()
      for row in rows:
        where, name = f"{path}:{row_number}", f"{os.path.basename(path)}:{row_number}"
        row_number += 1
        if not isinstance(row.get(text_column), str):
          problems.add("missing_text", f"{where}: no string column {text_column!r}; row skipped")
          continue
        yield Document(id=str(row.get("id") or name), text=row[text_column], url=str(row.get("url") or ""),
                       source=name)
  except Exception as error:  # pyarrow raises ArrowInvalid/OSError on damaged files
    problems.add("corrupt_parquet", f"{path}: {type(error).__name__}: {error}")


def read_documents(path: str, problems: InputProblems, text_column: str = "text") -> Iterator[Document]:
  """Dispatch on the file suffix; unknown suffixes and empty documents are counted, not read."""
  name = path.lower()
  if name.endswith(WARC_SUFFIXES):
    reader = read_warc(path, problems)
  elif name.endswith(HTML_SUFFIXES):
    reader = read_html(path, problems)
  elif name.endswith(JSONL_SUFFIXES):
    reader = read_jsonl(path, problems)
  elif name.endswith(PARQUET_SUFFIXES):
    reader = read_parquet(path, problems, text_column)
  else:
    supported = WARC_SUFFIXES + HTML_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES
    problems.add("unknown_format", f"{path}: unknown suffix; supported: {', '.join(supported)}")
    return
  try:
    for doc in reader:
      if doc.text.strip():
        yield doc
      else:
        problems.add("empty_document", f"{doc.source}: empty document skipped")
  except OSError as error:
    problems.add("unreadable_file", f"{path}: {type(error).__name__}: {error}")
