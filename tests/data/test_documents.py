"""Documents from globs: ids never hold a path, files come glob by glob, and a file that is not a document
(a marker, a stats file) is an error, never text."""
import gzip
import json

import pytest

from lmjax.data.documents import is_validation, matching_files, read_documents


def _write(folder, name: str, text: str):
  folder.mkdir(parents=True, exist_ok=True)
  (folder / name).write_text(text)
  return folder / name


def _lines(*records) -> str:
  return "".join(json.dumps(r) + "\n" for r in records)


def test_ids_name_the_file_not_its_folder_so_splits_are_the_same_anywhere(tmp_path):
  for folder in (tmp_path / "a", tmp_path / "deep" / "b"):
    _write(folder, "notes.txt", "a whole file")
    _write(folder, "docs.jsonl", _lines({"text": "no id"}, {"id": "own", "text": "has one"}))
  ids = lambda folder: [d["id"] for d in read_documents(f"{folder}/*")]
  assert ids(tmp_path / "a") == ids(tmp_path / "deep" / "b") == ["docs.jsonl:1", "own", "notes.txt"]
  assert all(str(tmp_path) not in i for i in ids(tmp_path / "a"))


def test_parquet_rows_are_documents_with_row_ids(tmp_path):
  import pyarrow as pa
  import pyarrow.parquet as pq
  pq.write_table(pa.table({"text": ["one", "two"], "id": ["x", None]}), tmp_path / "0.parquet")
  assert list(read_documents(f"{tmp_path}/*.parquet")) == [{"id": "x", "text": "one"},
                                                          {"id": "0.parquet:1", "text": "two"}]


def test_files_come_in_the_order_of_the_globs_whatever_their_folders_sort_as(tmp_path):
  late = _write(tmp_path / "z_cleaned", "00000.jsonl", _lines({"text": "web"}))
  early = _write(tmp_path / "a_corpus", "books.jsonl", _lines({"text": "book"}))
  assert matching_files(f"{late},{tmp_path}/a_corpus/*,{late}") == [str(late), str(early)]


@pytest.mark.parametrize("name", ["00000.done", "00000.stats.json", "README.md"])
def test_a_file_that_is_not_a_document_is_an_error_naming_it(tmp_path, name):
  _write(tmp_path, "00000.jsonl", _lines({"text": "web"}))
  _write(tmp_path, name, "{}")
  with pytest.raises(ValueError, match=rf"{name} is not a document file .*narrow the glob"):
    list(read_documents(f"{tmp_path}/*"))


def test_the_split_is_a_function_of_the_id_alone(tmp_path):
  with gzip.open(tmp_path / "d.jsonl.gz", "wt") as f:
    f.write(_lines(*({"text": f"doc {i}"} for i in range(200))))
  held_out = [d["id"] for d in read_documents(f"{tmp_path}/*") if is_validation(d["id"], 0.1)]
  assert 5 < len(held_out) < 40 and held_out == [f"d.jsonl.gz:{i + 1}" for i in range(200)
                                                  if is_validation(f"d.jsonl.gz:{i + 1}", 0.1)]
