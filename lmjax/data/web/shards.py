"""Shard files: documents written atomically (tmp file, then rename), read back streaming, and markers.

A task's outputs appear under their final names only when complete, and its `.done` marker is
written last, so a killed run never leaves a half-written file that looks finished.
"""
from __future__ import annotations

import io
import json
import os
import pathlib
from typing import Any, Iterable, Iterator

import zstandard

from lmjax.data.web.document import Document

DOC_SUFFIXES = {"jsonl.zst": ".jsonl.zst", "jsonl": ".jsonl", "parquet": ".parquet"}
PARQUET_ROWS_PER_GROUP = 10_000


def atomic_write_bytes(path: str | pathlib.Path, data: bytes) -> None:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
  with open(tmp, "wb") as file:
    file.write(data)
    file.flush()
    os.fsync(file.fileno())  # the bytes reach the disk before the name does, even on power loss
  os.replace(tmp, path)


def atomic_write_json(path: str | pathlib.Path, value: Any) -> None:
  atomic_write_bytes(path, json.dumps(value, indent=1, sort_keys=True).encode())


def marker_path(output: str | pathlib.Path) -> pathlib.Path:
  output = pathlib.Path(output)
  return output.with_name(output.name.split(".")[0] + ".done")


def is_done(output: str | pathlib.Path) -> bool:
  return marker_path(output).exists()


def mark_done(output: str | pathlib.Path) -> None:
  atomic_write_bytes(marker_path(output), b"")


def write_documents(path: str | pathlib.Path, docs: Iterable[Document], output_format: str) -> tuple[int, int]:
  """Write docs to `path` atomically as jsonl.zst / jsonl / parquet; returns (documents, text bytes)."""
  if output_format not in DOC_SUFFIXES:
    raise ValueError(f"output_format={output_format!r} is not one of {sorted(DOC_SUFFIXES)}")
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
  count = text_bytes = 0
  if output_format == "parquet":
    count, text_bytes = _write_parquet(tmp, docs)
  else:
    with open(tmp, "wb") as raw:
      sink = zstandard.ZstdCompressor(level=3).stream_writer(raw) if output_format == "jsonl.zst" else raw
      for doc in docs:
        line = json.dumps(doc.to_json(), ensure_ascii=False) + "\n"
        sink.write(line.encode("utf-8"))
        count += 1
        text_bytes += len(doc.text.encode("utf-8"))
      if sink is not raw:
        sink.flush(zstandard.FLUSH_FRAME)
      raw.flush()
      os.fsync(raw.fileno())
  os.replace(tmp, path)
  return count, text_bytes


def _write_parquet(path: pathlib.Path, docs: Iterable[Document]) -> tuple[int, int]:
  try:
    import pyarrow as pa
    import pyarrow.parquet as pq
  except ImportError as error:
    raise ImportError("output_format='parquet' needs pyarrow: pip install pyarrow") from error
  count = text_bytes = 0
  writer = None
  batch: list[dict[str, Any]] = []

  def flush() -> None:
    nonlocal writer
    table = pa.Table.from_pylist(batch)
    writer = writer or pq.ParquetWriter(path, table.schema)
    writer.write_table(table.cast(writer.schema))
    batch.clear()

  for doc in docs:
    batch.append(doc.to_json())
    count += 1
    text_bytes += len(doc.text.encode("utf-8"))
    if len(batch) >= PARQUET_ROWS_PER_GROUP:
      flush()
  if batch:
    flush()
  if writer is None:
    pq.write_table(pa.table({key: pa.array([], pa.string()) for key in ("id", "url", "text", "source")}), path)
  else:
    writer.close()
  return count, text_bytes


def read_documents(path: str | pathlib.Path) -> Iterator[Document]:
  """Documents of a shard this stage wrote (any of its formats), streaming."""
  path = str(path)
  if path.endswith(".parquet"):
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches():
      for row in batch.to_pylist():
        yield Document.from_json(row)
    return
  with open(path, "rb") as raw:
    stream = zstandard.ZstdDecompressor().stream_reader(raw) if path.endswith(".zst") else raw
    for line in io.TextIOWrapper(stream, encoding="utf-8"):
      yield Document.from_json(json.loads(line))
