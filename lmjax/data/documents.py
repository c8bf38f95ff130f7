"""Read documents ({'id', 'text'}) from .txt, .jsonl, .jsonl.gz or .jsonl.zst files matched by a glob.

Which split (train or validation) a document belongs to is a hash of its id, so it does not depend on
the order or number of input files, and the tokenizer holds out the same documents as the shards.
"""
import glob
import hashlib
import gzip
import io
import json
import os
from collections.abc import Iterator


def matching_files(pattern: str) -> list[str]:
  """Sorted files matching a glob (or comma-separated globs); empty if none match."""
  return sorted({f for p in pattern.split(",") if p for f in glob.glob(os.path.expanduser(p), recursive=True)
                 if os.path.isfile(f)})


def expand(pattern: str) -> list[str]:
  """Sorted files matching a glob (or comma-separated globs); an error if none match."""
  files = matching_files(pattern)
  if not files:
    raise FileNotFoundError(f"no files match {pattern!r}; set config.data.documents to a glob of "
                            ".txt/.jsonl/.jsonl.gz/.jsonl.zst files")
  return files


def open_text(path: str):
  """A text stream of a plain, .gz or .zst file."""
  if path.endswith(".gz"):
    return gzip.open(path, "rt", encoding="utf-8")
  if path.endswith(".zst"):
    import zstandard  # only needed for the cleaner's output format
    return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(open(path, "rb")), encoding="utf-8")
  return open(path, encoding="utf-8")


def read_jsonl(files: str | list[str], parse, what: str) -> Iterator:
  """`parse(record, where)` of every JSON line of the files (a glob, or a list of paths); a bad line is an
  error naming path:line.

  `parse` may raise KeyError, TypeError or ValueError (e.g. a ProtocolError) for a record that is not `what`.
  """
  for path in expand(files) if isinstance(files, str) else files:
    with open_text(path) as f:
      for line_number, line in enumerate(f, 1):
        if not line.strip():
          continue
        where = f"{path}:{line_number}"
        try:
          yield parse(json.loads(line), where)
        except (KeyError, TypeError, ValueError) as e:  # json.JSONDecodeError is a ValueError
          raise ValueError(f"{where}: not {what} ({type(e).__name__}: {e})") from e


def read_file(path: str, text_field: str = "text") -> Iterator[dict]:
  """Documents of one file: a .txt file is one document; JSON lines give one each (ids default to path:line)."""
  if not any(path.endswith(s) for s in (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz")):
    with open_text(path) as f:
      yield {"id": path, "text": f.read()}
    return
  def document(record, where):
    if not isinstance(record[text_field], str):
      raise TypeError(f"{text_field!r} is not a string")
    return {"id": str(record.get("id", where)), "text": record[text_field]}
  yield from read_jsonl([path], document, f"a JSON object with a {text_field!r} string")


def read_documents(pattern: str, text_field: str = "text") -> Iterator[dict]:
  """All documents of all matching files, in a fixed order (sorted files, then file order)."""
  for path in expand(pattern):
    yield from read_file(path, text_field)


def is_validation(doc_id: str, val_fraction: float) -> bool:
  """Deterministic split: the first 8 bytes of sha1(id) as a fraction of 2^64."""
  digest = int.from_bytes(hashlib.sha1(doc_id.encode()).digest()[:8], "little")
  return digest / 2**64 < val_fraction
