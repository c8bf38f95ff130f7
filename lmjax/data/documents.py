"""Read documents ({'id', 'text'}) from .txt, .jsonl(.gz/.zst) or .parquet files matched by globs.

Which split (train or validation) a document belongs to is a hash of its id, so it does not depend on
the order or number of input files, and the tokenizer holds out the same documents as the shards. An id never
holds a path (a record's own "id", else "<file name>:<line>"), and files come in the order of the globs, so
the same files give the same documents and splits wherever they live. Any other file a glob matches (a
marker, a stats file) is an error, never a document. Globs and files may be local, file:// or gs://.
"""
import hashlib
import gzip
import io
import json
import os
import re
from collections.abc import Iterator

from lmjax import fs
from lmjax.config import UserError

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz")
DOCUMENT_SUFFIXES = (".txt", *JSONL_SUFFIXES, ".parquet")


def matching_files(pattern: str) -> list[str]:
  """Files matching comma-separated globs: glob by glob in the order given, each glob's matches sorted, every
  file once; empty if none match. The order never depends on where the globs' folders are."""
  files = {}
  for part in pattern.split(","):
    if part:
      matches = (f for f in fs.glob(part) if fs.isfile(f))
      files.update(dict.fromkeys(sorted(matches)))
  return list(files)


def expand(pattern: str) -> list[str]:
  """Sorted files matching a glob (or comma-separated globs); an error if none match."""
  files = matching_files(pattern)
  if not files:
    raise FileNotFoundError(f"no files match {pattern!r}; set config.data.documents to a glob of "
                            ".txt/.jsonl/.jsonl.gz/.jsonl.zst files")
  return files


class BadRecord(UserError, ValueError):
  """A line of a data file that is not what its reader needs; the message names path:line."""


_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, under errors="surrogateescape"


def open_text(path: str, errors: str = "strict"):
  """A UTF-8 text stream of a plain, .gz or .zst file (`errors` as for bytes.decode)."""
  if path.endswith(".gz"):
    source = fs.open(path, "rb") if fs.is_remote(path) else fs.normalize(path)
    return gzip.open(source, "rt", encoding="utf-8", errors=errors)
  if path.endswith(".zst"):
    import zstandard  # only needed for the cleaner's output format
    binary = zstandard.ZstdDecompressor().stream_reader(fs.open(path, "rb"))
  else:
    binary = fs.open(path, "rb")
  return io.TextIOWrapper(binary, encoding="utf-8", errors=errors)


def first_undecodable(text: str) -> tuple[int, int] | None:
  """(the byte, its index in `text`) of the first byte that was not UTF-8 when `text` was decoded with
  errors="surrogateescape" (as Python decodes argv and, in a C locale, stdin), or None."""
  bad = _UNDECODABLE.search(text)
  return (ord(bad.group()) - 0xdc00, bad.start()) if bad else None


def check_utf8(text: str, path: str, line_number: int | None = None) -> str:
  """`text` (a file's, or its line `line_number`'s, read with errors="surrogateescape"), unchanged if it was
  UTF-8; else a BadRecord naming path:line, the byte and its column, and the fix."""
  if not (bad := first_undecodable(text)):
    return text
  byte, index = bad
  line_start = text.rfind("\n", 0, index) + 1
  line_number = line_number or text.count("\n", 0, index) + 1
  raise BadRecord(f"{path}:{line_number}: not UTF-8 text (byte 0x{byte:02x} at column {index - line_start + 1}); "
                  "re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`) or drop the line")


def read_lines(path: str) -> Iterator[tuple[int, str]]:
  """(line number, line) of a plain, .gz or .zst text file; a line that is not UTF-8 is an error naming it."""
  with open_text(path, errors="surrogateescape") as f:  # a bad byte is found on its own line
    for line_number, line in enumerate(f, 1):
      yield line_number, check_utf8(line, path, line_number)


def read_whole(path: str) -> str:
  """The text of a plain, .gz or .zst file; an error naming path:line if it is not UTF-8."""
  with open_text(path, errors="surrogateescape") as f:
    return check_utf8(f.read(), path)


def read_jsonl(files: str | list[str], parse, what: str) -> Iterator:
  """`parse(record, where)` of every JSON line of the files (a glob, or a list of paths); a bad line is an
  error naming path:line.

  `parse` may raise KeyError, TypeError or ValueError (e.g. a ProtocolError) for a record that is not `what`.
  """
  for path in expand(files) if isinstance(files, str) else files:
    for line_number, line in read_lines(path):
      if not line.strip():
        continue
      where = f"{path}:{line_number}"
      try:
        yield parse(json.loads(line), where)
      except (KeyError, TypeError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        raise BadRecord(f"{where}: not {what} ({type(e).__name__}: {e})") from e


def read_file(path: str, text_field: str = "text") -> Iterator[dict]:
  """Documents of one file: a .txt file is one document (its id the file name); JSON lines and parquet rows
  give one each (ids default to "<file name>:<line>" or "<file name>:<row>")."""
  name = os.path.basename(path)
  if path.endswith(".txt"):
    yield {"id": name, "text": read_whole(path)}
  elif path.endswith(".parquet"):
    yield from _read_parquet(path, text_field)
  elif path.endswith(JSONL_SUFFIXES):
    def document(record, where):  # where = "<path>:<line>"
      if not isinstance(record[text_field], str):
        raise TypeError(f"{text_field!r} is not a string")
      line = where.rpartition(":")[2]
      return {"id": str(record.get("id", f"{name}:{line}")), "text": record[text_field]}
    yield from read_jsonl([path], document, f"a JSON object with a {text_field!r} string")
  else:
    raise ValueError(f"{path} is not a document file (documents are {', '.join(DOCUMENT_SUFFIXES)}); "
                     "narrow the glob in config.data.documents (or config.chain.corpus) to document files")


def _read_parquet(path: str, text_field: str) -> Iterator[dict]:
  import pyarrow.parquet as pq  # the cleaner's parquet output format; pyarrow is a dependency
  row, source = 0, fs.open(path, "rb") if fs.is_remote(path) else fs.normalize(path)
  for batch in pq.ParquetFile(source).iter_batches(columns=None):
    for record in batch.to_pylist():
      if not isinstance(record.get(text_field), str):
        raise ValueError(f"{path}:{row}: not a row with a {text_field!r} string")
      yield {"id": str(record.get("id") or f"{os.path.basename(path)}:{row}"), "text": record[text_field]}
      row += 1


def read_documents(pattern: str, text_field: str = "text") -> Iterator[dict]:
  """All documents of all matching files, in a fixed order (sorted files, then file order)."""
  for path in expand(pattern):
    yield from read_file(path, text_field)


def is_validation(doc_id: str, val_fraction: float) -> bool:
  """Deterministic split: the first 8 bytes of sha1(id) as a fraction of 2^64."""
  digest = int.from_bytes(hashlib.sha1(doc_id.encode()).digest()[:8], "little")
  return digest / 2**64 < val_fraction
