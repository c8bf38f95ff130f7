"""Readers on the shipped real WARC and on bad input; extraction on real pages against their reST sources."""
import collections
import gzip
import json
import re
import zlib

import pytest
import zstandard
from web_test_data import HERE

from lmjax.data.web import extract
from lmjax.data.web.readers import InputProblems, read_documents

SOURCES = HERE / "python_doc_sources"


def warc_record(body: bytes, content_type: str, uri: str, record_id: str, http_headers: str = "") -> bytes:
  """One WARC response record around an HTTP response (extra headers as "Name: value\r\n..."), uncompressed."""
  http = b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type.encode() + b"\r\nContent-Length: " + \
      str(len(body)).encode() + b"\r\n" + http_headers.encode() + b"\r\n" + body
  header = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:{record_id}>\r\n"
            f"WARC-Target-URI: {uri}\r\nWARC-Date: 2026-01-01T00:00:00Z\r\n"
            f"Content-Type: application/http;msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n").encode()
  return header + http + b"\r\n\r\n"


def read_all(path, text_column="text"):
  problems = InputProblems()
  return list(read_documents(str(path), problems, text_column)), problems


def test_shipped_warc_yields_every_html_response(shipped_warc):
  docs, problems = read_all(shipped_warc)
  assert len(docs) == 125 and not problems.counts
  assert all(doc.id.startswith("<urn:uuid:") and doc.is_html for doc in docs)
  assert all(doc.source.endswith(doc.id) and doc.url.startswith("http://127.0.0.1:") for doc in docs)
  assert any(doc.url.endswith("/tutorial/appetite.html") for doc in docs)


def test_truncated_gzip_warc_is_counted_not_fatal(shipped_warc, tmp_path):
  cut = tmp_path / "cut.warc.gz"
  cut.write_bytes(shipped_warc.read_bytes()[:300_000])
  docs, problems = read_all(cut)
  assert 10 < len(docs) < 125
  assert problems.counts["truncated_record"] == 1 and "cut.warc.gz" in problems.examples["truncated_record"]


def test_non_html_record_and_undecodable_bytes_are_counted(tmp_path):
  html_latin1 = "<html><body><p>Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e</p></body></html>".encode("latin-1")
  records = [warc_record(b"<html><body><p>fine</p></body></html>", "text/html; charset=utf-8", "http://a/1", "1"),
             warc_record(b"\x89PNG\r\n\x1a\n....", "image/png", "http://a/2.png", "2"),
             warc_record(html_latin1, "text/html", "http://a/3", "3")]
  path = tmp_path / "mixed.warc.gz"
  path.write_bytes(b"".join(gzip.compress(record) for record in records))
  docs, problems = read_all(path)
  assert [doc.url for doc in docs] == ["http://a/1", "http://a/3"]
  assert problems.counts["not_html_record"] == 1 and "image/png" in problems.examples["not_html_record"]
  assert "Caf\u00e9" in docs[1].text  # decoded with the detected encoding, not mangled


def chunked(data: bytes, size: int = 100) -> bytes:
  """`Transfer-Encoding: chunked` framing of data, in chunks of `size` bytes."""
  pieces = [data[i:i + size] for i in range(0, len(data), size)]
  return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def test_gzip_deflate_and_chunked_http_bodies_are_decoded(tmp_path, clean_config):
  """Compressed bodies are inflated before extraction; a corrupt one is counted and the records after it read."""
  page = "".join(f"<p>Paragraph {i}: the river runs past the old mill in the valley.</p>" for i in range(5))
  html = f"<html><body><article>{page}</article></body></html>".encode()
  raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
  records = [
      warc_record(gzip.compress(html), "text/html", "http://a/gzip", "1", "Content-Encoding: gzip\r\n"),
      warc_record(zlib.compress(html), "text/html", "http://a/deflate", "2", "Content-Encoding: deflate\r\n"),
      warc_record(raw_deflate.compress(html) + raw_deflate.flush(), "text/html", "http://a/raw-deflate", "3",
                  "Content-Encoding: deflate\r\n"),
      warc_record(chunked(gzip.compress(html)), "text/html", "http://a/chunked-gzip", "4",
                  "Transfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n"),
      warc_record(gzip.compress(html)[:-30], "text/html", "http://a/cut-gzip", "5", "Content-Encoding: gzip\r\n"),
      warc_record(b"<html>not gzip</html>", "text/html", "http://a/not-gzip", "6", "Content-Encoding: gzip\r\n"),
      warc_record(html, "text/html", "http://a/plain", "7")]
  path = tmp_path / "encoded.warc.gz"
  path.write_bytes(b"".join(gzip.compress(record) for record in records))
  docs, problems = read_all(path)
  assert [doc.url for doc in docs] == ["http://a/gzip", "http://a/deflate", "http://a/raw-deflate",
                                       "http://a/chunked-gzip", "http://a/plain"]
  step = extract.build(clean_config.extract)
  texts = [step(doc).text for doc in docs]
  assert all(text == texts[-1] for text in texts) and "Paragraph 4: the river runs past" in texts[0]
  assert problems.counts == collections.Counter(corrupt_http_body=2)
  assert "truncated" in problems.examples["corrupt_http_body"]


def test_bytes_valid_in_no_encoding_are_replaced_and_counted(tmp_path):
  path = tmp_path / "page.html"
  path.write_bytes(b"<html><body><p>ok \xff\xfe\x00\x81 text</p></body></html>")
  docs, problems = read_all(path)
  assert len(docs) == 1 and "ok" in docs[0].text and "text" in docs[0].text


def test_jsonl_bad_lines_are_counted_and_skipped(tmp_path):
  lines = [json.dumps({"text": "first", "url": "http://x/1", "id": "a"}), "{not json", "",
           json.dumps({"no_text": 1}), json.dumps({"text": ""})]
  path = tmp_path / "docs.jsonl"
  path.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe\n")
  docs, problems = read_all(path)
  assert [doc.id for doc in docs] == ["a"]
  assert problems.counts == collections.Counter(bad_json_line=1, missing_text=1, undecodable_bytes=1, empty_document=1)


def test_jsonl_zst_and_truncated_gzip_jsonl(tmp_path):
  rows = "".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(1000)).encode()
  zst = tmp_path / "docs.jsonl.zst"
  zst.write_bytes(zstandard.ZstdCompressor().compress(rows))
  assert len(read_all(zst)[0]) == 1000
  cut = tmp_path / "cut.jsonl.gz"
  cut.write_bytes(gzip.compress(rows)[:-20])
  docs, problems = read_all(cut)
  assert problems.counts["truncated_file"] == 1 and len(docs) >= 990


def test_parquet_text_column(tmp_path):
  pa = pytest.importorskip("pyarrow")
  import pyarrow.parquet as pq

  path = tmp_path / "docs.parquet"
  pq.write_table(pa.table({"content": ["one", None, "three"], "url": ["u1", "u2", "u3"]}), path)
  docs, problems = read_all(path, text_column="content")
  assert [doc.text for doc in docs] == ["one", "three"] and problems.counts["missing_text"] == 1


def test_unknown_suffix_is_reported(tmp_path):
  path = tmp_path / "notes.docx"
  path.write_bytes(b"x")
  docs, problems = read_all(path)
  assert not docs and "supported" in problems.examples["unknown_format"]


WORD = re.compile(r"[^\W_]{2,}")


def word_bag(text: str) -> collections.Counter:
  return collections.Counter(word.lower() for word in WORD.findall(text))


def test_extraction_recovers_the_source_text_of_real_pages(shipped_warc, clean_config):
  """Bag-of-words precision and recall of the extracted text against each page's reST source."""
  step = extract.build(clean_config.extract)
  docs, _ = read_all(shipped_warc)
  scores = []
  for doc in docs:
    rel = doc.url.split("/", 3)[3]
    source = SOURCES / rel.replace(".html", ".rst.txt")
    if rel.startswith("mirror/") or not source.exists():
      continue
    extracted, reference = word_bag(step(doc).text), word_bag(source.read_text())
    common = sum((extracted & reference).values())
    scores.append((common / sum(extracted.values()), common / sum(reference.values())))
  assert len(scores) >= 70
  precision = sum(p for p, _ in scores) / len(scores)
  recall = sum(r for _, r in scores) / len(scores)
  assert precision >= 0.9 and recall >= 0.8, (precision, recall)


def test_extraction_drops_navigation_and_keeps_paragraphs(clean_config):
  step = extract.build(clean_config.extract)
  html = ("<html><body><nav><a href='/'>Home</a> <a href='/about'>About us</a></nav><main><article>"
          + "".join(f"<p>Paragraph {i} tells a long story about the river and the town.</p>" for i in range(8))
          + "</article></main><footer>Copyright footer text</footer></body></html>")
  from lmjax.data.web.document import Document

  text = step(Document(id="x", text=html, is_html=True)).text
  assert "Paragraph 7 tells" in text and "About us" not in text and "Copyright footer" not in text
  assert text.count("\n") >= 7  # one line per paragraph: the line-based filters need it
